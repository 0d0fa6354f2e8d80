"""`graphnet.nn`: the homework's import path of graphnet.homework.eecs189 (its names, and its
modules as graphnet.nn.layers, .activations, .losses, .models)."""
from ..homework.eecs189 import *  # noqa: F401,F403
from ..homework.eecs189 import __all__  # noqa: F401
