"""Lines for the user on standard output that outlive its reader (`graphnet train ... | head -2`).

A long command (train, sweep, bench) prints a line at a time while it works; when
the reader of stdout goes away, the work goes on and finishes as it would have
(its files written, its exit code the same): its lines go nowhere from then on,
and stderr says so once.
"""
from __future__ import annotations

import os
import sys
from typing import Callable


def line_printer(command: str, notice: bool = True) -> Callable[[str], None]:
    """A `print` of one line for `command` ("graphnet train"), flushed at once. When stdout has
    been closed, stdout is pointed at the null device and, with `notice`, stderr says that
    the lines stop and the work goes on (once: later lines no longer fail)."""

    def say(text: str) -> None:
        try:
            print(text, flush=True)
        except BrokenPipeError:
            silence_stdout()
            if notice:
                try:
                    print(f"{command}: stdout was closed; going on without printing", file=sys.stderr, flush=True)
                except OSError:  # stderr is gone too
                    pass

    return say


def silence_stdout() -> None:
    """Point stdout's file descriptor at the null device: what is still buffered, and every
    later print, goes nowhere (and no second BrokenPipeError comes at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no descriptor (replaced in-process): nothing to point
        pass
    finally:
        os.close(devnull)
