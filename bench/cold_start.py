"""Cold start: wall time from process start to the end of the first training step.

    python bench/cold_start.py [--spec specs/fashion_mlp.json] [--repeats 3]

Runs a fresh Python process with an empty numba cache folder (first process:
every kernel compiles), then again with the same folder (second process: the
kernels load from numba's cache). Prints medians of the repeats and writes
cold_start.json in --results DIR (default bench-results/).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # `import report` also when run from elsewhere

from report import add_results_option, print_machine, write_report  # noqa: E402

CHILD = r"""
import time, sys
start = float(sys.argv[1])
import numpy as np
import graphnet as gn
run = gn.load(sys.argv[2])
spec = getattr(run, "network", run)
net = gn.compile(spec, batch_size=128)
shape = next(iter(net.graph.inputs.values())).shape
classes = next(iter(net.graph.labels.values())).classes
rng = np.random.default_rng(0)
X = rng.standard_normal((128, *shape)).astype(np.float32)
y = rng.integers(0, classes, 128)
opt = gn.Optimizer(net, "adam", learning_rate=1e-3)
opt.step(X, y)
print(time.time() - start)
"""


def one_process(spec: str, cache: str) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    start = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, repr(start), spec], env=env, check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="specs/fashion_mlp.json")
    parser.add_argument("--repeats", type=int, default=3)
    add_results_option(parser)
    args = parser.parse_args()
    machine = print_machine()
    first, second = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="graphnet-numba-cache-") as cache:
            first.append(one_process(args.spec, cache))
            second.append(one_process(args.spec, cache))
    result = {
        "spec": args.spec,
        "machine": machine,
        # numba imports scipy.linalg (if installed) the first time it loads a kernel
        "scipy_installed": importlib.util.find_spec("scipy") is not None,
        "first_process_s": statistics.median(first),
        "second_process_s": statistics.median(second),
        "first_all": first,
        "second_all": second,
    }
    print(f"cold start to the end of the first step ({args.spec}), median of {args.repeats}:")
    print(f"  first process (empty numba cache): {result['first_process_s']:.2f} s")
    print(f"  second process (cache warm):       {result['second_process_s']:.2f} s")
    print(f"  scipy installed (numba imports it): {result['scipy_installed']}")
    write_report(args.results / "cold_start.json", result)


if __name__ == "__main__":
    main()
