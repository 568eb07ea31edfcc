"""Conversations and writing help as plain data: the SQLite store and its file formats, prompts sent to the
engine, the context window, sampling presets and writing actions. Imports only ``core`` basics and ``core.gguf``."""
