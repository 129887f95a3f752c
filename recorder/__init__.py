"""Recording stage: devices, level meter and level matching, take writer, synthetic guitar."""
