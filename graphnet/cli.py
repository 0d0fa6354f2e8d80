"""The `graphnet` command line: validate, schema, compile, train, eval, gradcheck, bench."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .errors import GraphnetError, SpecError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return register


def _network_of(path: str):
    from .spec import RunSpec, load

    spec = load(path)
    return spec.network if isinstance(spec, RunSpec) else spec


@command("validate")
def _validate(args: argparse.Namespace) -> int:
    from .graph import build_graph, describe_graph

    failed = 0
    for path in args.files:
        try:
            network = _network_of(path)
        except SpecError as error:
            failed += 1
            for line in error.lines():
                print(line, file=sys.stderr)
            continue
        if not args.quiet:
            print(f"{path}: valid network '{network.name}'")
            print(describe_graph(build_graph(network)))
            print()
        else:
            print(f"{path}: valid")
    return 1 if failed else 0


@command("schema")
def _schema(args: argparse.Namespace) -> int:
    from .fileio import write_text_atomic
    from .spec import schema_text

    text = schema_text()
    if args.out in (None, "-"):
        sys.stdout.write(text)
    else:
        write_text_atomic(args.out, text)
        print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphnet",
        description="Declarative, compiled-graph neural networks for the CPU.",
    )
    parser.add_argument("--version", action="version", version=f"graphnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check spec files; print nodes, shapes and parameter counts")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="one line per valid file")

    p = sub.add_parser("schema", help="print or write the JSON Schema of spec files")
    p.add_argument("-o", "--out", metavar="PATH", help="write here (atomically) instead of stdout")

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except SpecError as error:
        for line in error.lines():
            print(f"graphnet {args.command}: {line}", file=sys.stderr)
        return 1
    except GraphnetError as error:
        print(f"graphnet {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"graphnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # an internal error: one line, the traceback on request
        if os.environ.get("GRAPHNET_DEBUG"):
            raise
        print(f"graphnet {args.command}: internal error: {type(error).__name__}: {error} "
              "(set GRAPHNET_DEBUG=1 for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
