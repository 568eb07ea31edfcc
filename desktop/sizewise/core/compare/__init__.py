"""Comparisons as plain data: the runs a comparison makes and whether their engines fit in memory together,
the record each run fills in, and the report built from those records. Imports ``core`` basics, ``core.gguf``,
``core.fit``, ``core.hub.resolve`` and ``core.report``; never Qt, llama_cpp, the engine or the gui (the runner
that drives the engines lives in gui/compare/)."""
