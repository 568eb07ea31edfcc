"""GGUF files read without llama.cpp: the header parser (local files or any byte source) and the model facts
derived from it. Imports only the standard library, ``gguf`` and ``core`` basics."""
