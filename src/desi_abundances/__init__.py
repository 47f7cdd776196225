"""desi-abundances
"""

__version__ = "0.1"
