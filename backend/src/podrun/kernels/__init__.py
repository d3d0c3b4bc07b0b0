"""Kernels: a Python process kept alive in a sandbox for its owner, running cells (each an Execution) in order."""
