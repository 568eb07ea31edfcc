"""Sizewise: run small language models locally and see what your hardware handles."""

__version__ = "0.1.0"
APP_NAME = "Sizewise"
APP_ID = "io.github.sizewise.Sizewise"
