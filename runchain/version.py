"""The version of runchain, in its own module so that nothing has to import the package."""

__version__ = "0.1.0"
