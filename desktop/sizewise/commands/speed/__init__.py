"""Speed commands: ``calibrate`` (measure this machine's speed profile)."""
