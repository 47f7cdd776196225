"""Neutral maths shared by several floors (numpy only, no project imports): the polynomial
design matrix in the labels, robust statistics and air/vacuum wavelengths. Bottom floor:
anything may import these; they import nothing of the project."""
