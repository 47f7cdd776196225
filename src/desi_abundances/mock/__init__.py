"""The embedded mock DESI x APOGEE survey: population, spectral models, DESI instrument,
catalogues and writers. Everything here is MOCK data for development and tests."""
