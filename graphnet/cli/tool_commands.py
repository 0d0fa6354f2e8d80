"""`graphnet sweep` and `graphnet bench`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .registry import command


@command("sweep")
def _sweep(args: argparse.Namespace) -> int:
    from ..sweep import run_sweep
    from ..system.interrupts import interrupted_exit_code

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
    from ..errors import NumbaMissingError
    from ..kernels import HAVE_NUMBA
    from ..runtime.blas import blas_info
    from ..system.console import line_printer

    if not HAVE_NUMBA:
        raise NumbaMissingError("it times the numba kernels against their NumPy twins and needs numba, "
                                "which is not installed (pip install numba)")
    from ..benchmarks.kernels import format_table, run_kernel_bench
    from ..benchmarks.machine import blas_kernel, measure_peak
    from ..benchmarks.machine_load import LoadMeter

    say = line_printer("graphnet bench")  # a closed stdout does not stop the measurement or --json
    say(blas_info(args.dtype))
    say(blas_kernel())
    peak = measure_peak()
    say(peak)
    meter = LoadMeter()
    rows = run_kernel_bench(quick=not args.full, dtype=args.dtype)
    say(format_table(rows))
    say(meter.report())
    if not args.kernels_only:
        from ..benchmarks.step import format_step_table, run_step_bench

        meter = LoadMeter()
        step_rows = run_step_bench(quick=not args.full, peak=peak)
        say("")
        say(format_step_table(step_rows))
        say(meter.report())
        if args.json:
            import json

            from ..system.fileio import STDOUT, write_text_atomic

            write_text_atomic(args.json, json.dumps(step_rows, indent=2) + "\n")
            if args.json != STDOUT:
                say(f"\nwrote {args.json}")
    return 0
