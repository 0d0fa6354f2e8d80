"""`graphnet.layer_utils`: the homework's import path of graphnet.homework.cs231n.layer_utils (the same module)."""
import sys

from .homework.cs231n import layer_utils

sys.modules[__name__] = layer_utils
