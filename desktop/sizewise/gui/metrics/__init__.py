"""Live metrics: one sampler into ring buffers, and the charts drawn from them."""
