"""Qt-free, llama-free logic: everything here is plain Python and unit-testable without a display."""
