"""The runtime: a compiled network's plans bound to its arrays (`network.Network`), the optimizer over
its flat buffers, the kernel backend, the Target settings (`config`), BLAS and its threads, the
contention governor.
"""
