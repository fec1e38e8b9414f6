"""Array kernels of vpimage, installed as ``vpimage.kernels``.

Pure functions on arrays (no I/O, no logging, no global state), one module per backend
with the same names and signatures.
"""
