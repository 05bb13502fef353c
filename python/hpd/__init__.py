"""Tumor-growth kinetics and hyperprogression from SDTM trial exports."""

__version__ = "0.1.0"
