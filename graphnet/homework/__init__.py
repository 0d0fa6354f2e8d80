"""The APIs of the homework graphnet grew out of, on the compiled core: CS231n / EECS182 (`cs231n`:
functional layers, update rules, Solver, TwoLayerNet, FullyConnectedNet, gradient checks) and
EECS189 (`eecs189`: layer objects). They keep their old import paths: graphnet.layers,
graphnet.layer_utils, graphnet.optim, graphnet.solver, graphnet.models, graphnet.gradient_check
and graphnet.nn.
"""
