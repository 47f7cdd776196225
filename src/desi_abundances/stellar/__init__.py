"""Stellar physics shared by the mock, the spectral library and the evaluation: the label
names, the microturbulence relation and a Galactic population to draw labels from.
Bottom floor: imports only ``constants`` (numpy/pandas)."""
