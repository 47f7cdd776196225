"""Physical constants the project uses (bottom floor: imports nothing)."""

SPEED_OF_LIGHT_KMS = 299_792.458
"""Speed of light in vacuum, km/s (exact, SI definition)."""
