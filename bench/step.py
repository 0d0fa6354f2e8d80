"""One training step, graphnet against the BLAS floor and its peers (tuned and
student NumPy, PyTorch eager, JAX jit): the README's step table.

    python bench/step.py                   # quick: sizes S and M
    python bench/step.py --full            # the README table; writes bench-results/step.json
    python bench/step.py --rules --full    # every update rule, inside backward vs the separate
                                           # pass (~10 min); writes bench-results/step_rules.json

Every contender runs in its own process, samples interleaved (see
graphnet.benchmarks.step.time_isolated). Peers that are not installed are listed
as skipped. `graphnet bench` measures graphnet's own contenders only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # `import peers` also when run from elsewhere

from peers import CONTENDERS  # noqa: E402
from report import add_results_option, write_report  # noqa: E402

from graphnet.benchmarks.machine import blas_kernel, measure_peak  # noqa: E402
from graphnet.benchmarks.machine_load import LoadMeter  # noqa: E402
from graphnet.benchmarks.step import SIZES, format_step_table, run_rule_bench, run_step_bench  # noqa: E402
from graphnet.runtime.blas import blas_info  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="sizes S, M and L, 31 rounds (~8 min)")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), help="only these sizes")
    parser.add_argument("--rules", action="store_true",
                        help="time graphnet's update rules (in backward and separate) instead of the peers")
    add_results_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(blas_info())
    print(blas_kernel())
    peak = measure_peak()
    print(peak)
    meter = LoadMeter()
    if args.rules:
        rows = run_rule_bench(quick=not args.full, sizes=args.sizes, peak=peak)
    else:
        rows = run_step_bench(quick=not args.full, sizes=args.sizes, contenders=CONTENDERS, peak=peak)
    print(format_step_table(rows))
    print(meter.report())
    write_report(args.results / ("step_rules.json" if args.rules else "step.json"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
