"""The quant lab's llama.cpp work (quantizing a model, scoring one on a text), each run in a process of its own.

Why a process per job and not the chat worker: llama.cpp's quantizer cannot be interrupted from outside,
and a quality run loads one or two models the chat must not lose. A job process is ended to cancel it,
which is immediate and leaves nothing half-done: every file a job writes is written under a temporary name
and renamed only when complete (see core/quant/plan.py and reference_cache.py).
"""
