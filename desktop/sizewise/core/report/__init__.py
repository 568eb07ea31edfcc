"""What gets written down for people: the hardware-fit report (JSON, Markdown, HTML), its SVG charts,
the llama.cpp build facts and third-party licenses. May import ``core.fit`` and ``core.gguf``; only report
users import it."""
