"""Models on the Hugging Face Hub and on this computer: browsing, header-only remote reads and fit checks,
verified resumable downloads into the HF cache, the local library (other apps' folders too) and the starter model.
Imports ``core.gguf``, ``core.fit`` and ``core`` basics; never chat or report."""
