"""Fit across machines: a model split by llama.cpp's RPC backend over several rpc-servers, host by host (issue 17).

``hosts`` reads the hosts and their memory as people write them; ``split`` predicts where llama.cpp puts each
layer, its KV cache and the compute buffers, and whether every host has room."""
