"""What `graphnet bench` measures on a user's machine: the kernels against their NumPy twins, the
training step against the BLAS floor, and how busy the machine was meanwhile.
"""
