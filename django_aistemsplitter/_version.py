"""The package version, in a module of its own so anything can read it without cycles.

``setup.cfg`` reads it through the package root, which re-exports it.
"""

__version__ = "0.1.0"
