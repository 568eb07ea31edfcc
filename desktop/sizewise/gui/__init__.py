"""Qt widgets, models and thin adapters over the engine and the core. Never imports llama_cpp."""
