"""Galactic archaeology from the value-added catalogue: what a user does with it (the notebooks' helpers)."""
