"""The `graphnet` command line: validate, schema, compile, train, eval, predict, gradcheck, export,
import, sweep, bench.

One module per group of subcommands (`spec_commands`, `train_commands`,
`deploy_commands`, `tool_commands`), each registering its handlers in
`registry.COMMANDS`; `parser.build_parser` declares the arguments; `main` runs a
handler and turns every error into one line and an exit code:

    0    done
    1    a user error (spec, data, run folder, file system, storage), or an MPI rank that died
    2    a usage error (arguments)
    3    an internal error (a bug: GRAPHNET_DEBUG=1 shows the traceback)
    130  stopped by Ctrl-C (SIGINT): 128 + 2
    143  stopped by SIGTERM (what schedulers and supervisors send): 128 + 15

Every command, train (in one process or with --workers), sweep and predict included,
stops on SIGINT and SIGTERM with the code above, also when it was started with SIGINT
ignored (`graphnet train ... &` in a script): see graphnet.system.interrupts.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Callable, Sequence

from ..errors import GraphnetError, SpecError, SpecWarning
from ..system.console import silence_stdout
from ..system.interrupts import (
    forget_stop,
    interrupted_exit_code,
    stop_message,
    stop_noted,
    stop_signals_interrupt,
)
from . import deploy_commands, spec_commands, tool_commands, train_commands  # noqa: F401  (they register)
from .parser import build_parser
from .registry import COMMANDS

__all__ = ["main", "build_parser", "COMMANDS"]


def _os_error_line(error: OSError) -> str:
    """`path: reason` for an error of the file system."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    if error.filename2 is not None:
        return f"{error.filename} -> {error.filename2}: {reason}"
    return f"{error.filename}: {reason}"


def _warning_line(command: str) -> Callable[..., None]:
    """A showwarning that prints graphnet's own warnings as one line, others as Python does."""
    default = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *rest: object, **kwargs: object) -> None:
        if issubclass(category, SpecWarning):
            print(f"graphnet {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, *rest, **kwargs)  # type: ignore[arg-type]

    return show


def _set_threads(count: int | None) -> None:
    """--threads, else $GRAPHNET_THREADS (GraphnetError when it is malformed), else the BLAS default."""
    from ..runtime.threads import set_threads, threads_from_env

    count = count or threads_from_env()
    if count is not None:
        set_threads(count)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    forget_stop()
    try:
        with warnings.catch_warnings(), stop_signals_interrupt():
            warnings.showwarning = _warning_line(args.command)
            _set_threads(args.threads)
            return COMMANDS[args.command](args)
    except SpecError as error:
        for line in error.lines():
            print(f"graphnet {args.command}: {line}", file=sys.stderr)
        return 1
    except GraphnetError as error:
        print(f"graphnet {args.command}: {error.command_line_message()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(stop_message(args.command), file=sys.stderr)
        return interrupted_exit_code()
    except BrokenPipeError as error:
        if error.filename is not None:  # a FIFO named as an output, whose reader went away
            print(f"graphnet {args.command}: {_os_error_line(error)}", file=sys.stderr)
            return 1
        silence_stdout()  # stdout's reader stopped reading (`graphnet predict ... | head`): not an error
        return 0
    except OSError as error:  # disk full, read-only file system, a path under a regular file, ...
        print(f"graphnet {args.command}: {_os_error_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:  # an internal error: one line, the traceback on request
        if stop_noted():  # a signal that a library caught, failing its own cleanup: still a stop
            print(stop_message(args.command), file=sys.stderr)
            return interrupted_exit_code()
        if os.environ.get("GRAPHNET_DEBUG"):
            raise
        print(f"graphnet {args.command}: internal error: {type(error).__name__}: {error} "
              "(set GRAPHNET_DEBUG=1 for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
