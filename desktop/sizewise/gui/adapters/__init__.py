"""Bridges from background work and engine processes to the GUI thread: ``run_in_background`` and the
engine adapters that turn worker events into Qt signals."""
