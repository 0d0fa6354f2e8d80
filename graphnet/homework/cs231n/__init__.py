"""CS231n / EECS182: functional layers, update rules, the Solver, TwoLayerNet and FullyConnectedNet, gradient checks.
"""
