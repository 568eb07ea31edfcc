"""The quant lab's model of the world: llama.cpp's quant types, what a quantization will write, and quality
figures (perplexity, KL divergence) computed from logits.

Why its own package: making a smaller quant and measuring what it costs are one question ("which quant
should I keep?") that sits beside fit, not inside it. It reads GGUF headers (core.gguf) and nothing from the
Hub, conversations, comparisons or reports; llama.cpp itself runs in engine/quant.
"""
