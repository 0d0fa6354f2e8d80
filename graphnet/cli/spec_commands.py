"""`graphnet validate`, `schema`, `compile` and `gradcheck`: commands that read specs."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..errors import SpecError, SpecWarning
from .registry import command


def _network_of(path: str):
    from ..spec import RunSpec, load

    spec = load(path)
    return spec.network if isinstance(spec, RunSpec) else spec


@command("validate")
def _validate(args: argparse.Namespace) -> int:
    from ..compiler.graph import build_graph, describe_graph

    failed = 0
    for path in _spec_files(args.files):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SpecWarning)
                network = _network_of(path)
            for warning in caught:
                print(f"{path}: warning: {warning.message}", file=sys.stderr)
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
    from ..spec import schema_text
    from ..system.fileio import STDOUT, write_text_atomic

    write_text_atomic(args.out or STDOUT, schema_text())
    if args.out not in (None, STDOUT):
        print(f"wrote {args.out}")
    return 0


@command("compile")
def _compile(args: argparse.Namespace) -> int:
    from ..compiler.describe import graph_to_dot
    from ..model.compiled import compile

    network = _network_of(args.file)
    net = compile(network, batch_size=args.batch, dtype=args.dtype, backend=args.backend, fuse=not args.no_fuse)
    if args.dot:
        from ..compiler import fuse

        graph = fuse(net.graph)[0] if not args.no_fuse else net.graph
        sys.stdout.write(graph_to_dot(graph))
        return 0
    kind = {"train": "train", "sgd": "train_sgd", "infer": "infer", "eval": "eval_loss"}[args.mode]
    if kind != "infer" and net.graph.loss is None:
        kind = "infer"
    print(net.plan(kind).describe())
    return 0


def _is_json_schema(path: str) -> bool:
    """True for a JSON Schema document (specs/schema.json sits beside the zoo specs)."""
    import json

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "json-schema.org" in str(document.get("$schema", ""))


def _spec_files(paths: list[str]) -> list[str]:
    """The paths to check; with several (specs/*.json), the JSON Schema among them is skipped."""
    kept = []
    for path in paths:
        if len(paths) > 1 and _is_json_schema(path):
            print(f"{path}: skipped (a JSON Schema, not a network spec)")
        else:
            kept.append(path)
    return kept


@command("gradcheck")
def _gradcheck(args: argparse.Namespace) -> int:
    failed = 0
    for path in _spec_files(args.files):
        if len(args.files) > 1:
            print(f"{path}:")
        try:
            failed += _gradcheck_file(path, args)
        except SpecError as error:
            if len(args.files) == 1:
                raise
            failed += 1
            for line in error.lines():
                print(f"graphnet gradcheck: {line}", file=sys.stderr)
    return 1 if failed else 0


def _gradcheck_file(path: str, args: argparse.Namespace) -> int:
    import numpy as np

    from ..model.compiled import compile
    from ..model.gradcheck import check_gradients

    network = _network_of(path)
    if network.loss is None:
        raise SpecError([("loss", "gradcheck needs a network with a loss")], path)
    net = compile(network, batch_size=args.batch, dtype="float64", backend=args.backend, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    X = {name: rng.standard_normal((args.batch, *value.shape)) for name, value in net.graph.inputs.items()}
    y = {}
    for name, value in net.graph.labels.items():
        y[name] = (rng.integers(0, value.classes, args.batch) if value.kind == "classes"
                   else rng.uniform(0, 1, (args.batch, *value.shape)))
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", UserWarning)
        results = check_gradients(net, X, y, entries=args.entries or None, h=args.h, atol=args.atol)
    for note in notes:
        print(f"warning: {note.message}")
    width = max(len(r.name) for r in results)
    print(f"{'parameter'.ljust(width)}  checked  rel. error  abs. error")
    vanishing = {r.name for r in results if r.passed(args.tolerance) and r.rel_error > args.tolerance}
    failed = [r for r in results if not r.passed(args.tolerance)]
    for r in results:
        flag = "  FAIL" if r in failed else "  (vanishing gradient: within atol)" if r.name in vanishing else ""
        print(f"{r.name.ljust(width)}  {r.checked:7d}  {r.rel_error:10.2e}  {r.abs_error:10.2e}{flag}")
    worst = max((r.rel_error for r in results if r.name not in vanishing), default=0.0)
    print(f"worst relative error {worst:.2e} (tolerance {args.tolerance:g}; atol {results[0].atol:.1e} for "
          f"vanishing gradients; float64, batch {args.batch})")
    return 1 if failed else 0
