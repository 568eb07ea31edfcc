"""llama.cpp in worker processes: a crash, abort or OOM there never takes the app down."""
