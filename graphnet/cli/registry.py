"""The subcommand table: each `graphnet` subcommand registers its handler here by name."""
from __future__ import annotations

import argparse
from typing import Callable

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of `graphnet NAME`; it returns the exit code."""
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn

    return register
