"""How ggml's backend scheduler spreads one compute graph over a GPU and the CPU (compute buffers per device)."""
