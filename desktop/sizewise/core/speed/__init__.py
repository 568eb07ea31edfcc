"""Speed before download: the generation/prompt speed model, its fit from measurements, and synthetic models.

No Qt and no llama.cpp here; calibration (which runs llama.cpp) lives in engine/speed/.
"""
