"""Reference-label sources (the labels a model learns from): APOGEE DR17 allStar today."""
