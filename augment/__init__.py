"""Augment stage: tone presets and their rendering with pedalboard."""
