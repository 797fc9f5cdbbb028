"""CIFTA Exchange services: the shared library (``core``), node, directory, audit and CLI."""
