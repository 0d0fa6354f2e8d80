"""`graphnet sweep` and `graphnet bench`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .registry import command


@command("sweep")
def _sweep(args: argparse.Namespace) -> int:
    from ..interrupts import interrupted_exit_code
    from ..sweep import run_sweep

    out = args.out or str(Path("sweeps") / Path(args.file).stem)
    result = run_sweep(args.file, trials=args.trials, jobs=args.jobs, out=out, storage=args.storage,
                       prune=args.prune)
    if result.interrupted:
        return interrupted_exit_code()
    if result.best is None:
        print(f"graphnet sweep: no trial completed (see the notes in {Path(out) / 'results.csv'})",
              file=sys.stderr)
        return 1
    return 0


@command("bench")
def _bench(args: argparse.Namespace) -> int:
    from ..blas import blas_info
    from ..kernel_bench import format_table, run_kernel_bench

    print(blas_info(args.dtype))
    rows = run_kernel_bench(quick=not args.full, dtype=args.dtype)
    print(format_table(rows))
    if not args.kernels_only:
        from ..step_bench import format_step_table, run_step_bench

        step_rows = run_step_bench(quick=not args.full)
        print()
        print(format_step_table(step_rows))
        if args.json:
            import json

            from ..fileio import write_text_atomic

            write_text_atomic(args.json, json.dumps(step_rows, indent=2) + "\n")
            print(f"\nwrote {args.json}")
    return 0
