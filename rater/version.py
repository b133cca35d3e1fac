"""The version of rater, in a module of its own so that reading it imports no blueprint."""

__version__ = "0.1.0"
