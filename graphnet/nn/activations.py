"""`graphnet.nn.activations`: the homework's import path of graphnet.homework.eecs189.activations (the same module)."""
import sys

from ..homework.eecs189 import activations

sys.modules[__name__] = activations
