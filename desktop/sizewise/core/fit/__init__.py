"""Will it fit, and how fast: the memory model (weights, KV, compute graph), this machine's hardware, deployment
targets, verdicts, and the measured-vs-predicted record. Imports ``core.gguf`` and ``core`` basics; never the Hub,
chat or report packages."""
