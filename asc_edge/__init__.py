"""asc-edge: tiny acoustic scene classification from training to a Cortex-M4."""
__version__ = "0.1.0"
