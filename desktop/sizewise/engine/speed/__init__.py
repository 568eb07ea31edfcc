"""Speed calibration: measuring this machine's speed profile with synthetic models (core/speed/)."""
