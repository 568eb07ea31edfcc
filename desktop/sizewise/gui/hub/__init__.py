"""The Discover and Library pages: the Hub search with fit verdicts, downloads, and every local model."""
