"""The package version, in the lowest layer so that every module may read it without importing the package face."""

__version__ = "0.1.0"
