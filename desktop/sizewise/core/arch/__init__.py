"""A model's shape without its weights: the hyper-parameters of a llama.cpp architecture, as a published
config gives them, and what follows from them alone (the parameter count, total and per token).

Memory and speed estimates for models that are not on this computer (the catalogue's ladder, Discover) start
here; the exact answer for a file still comes from its header (``core.gguf``). Imports only ``core`` basics, so
any capability package can build on it.
"""
