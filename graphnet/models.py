"""`graphnet.models`: the homework's import path of graphnet.homework.cs231n.models (the same module)."""
import sys

from .homework.cs231n import models

sys.modules[__name__] = models
