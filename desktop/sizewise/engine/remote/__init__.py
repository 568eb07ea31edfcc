"""Remote engines: llama-server and other OpenAI-compatible servers over HTTP (no worker process, no llama_cpp)."""
