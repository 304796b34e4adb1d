"""Code generation for the asc_edge int8 firmware (kernels, quantisation helpers)."""
