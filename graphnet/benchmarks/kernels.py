"""Kernel benchmark: each numba kernel against its NumPy twin, side by side.

``run_kernel_bench`` times every (kernel, size) pair in one process with
interleaved repeats (numba, numpy, numba, numpy, ...) and reports medians;
``format_table`` prints them. Used by ``graphnet bench``; needs no pytest.
"""
from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphnet.compiler.describe import text_table
from graphnet.kernels import RELU, get_backend
from graphnet.kernels.examples import example_args


@dataclass
class BenchCase:
    """One row of the table: a numba kernel and its baseline, each with its own arguments."""

    kernel: str
    size: str
    variants: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]  # "numba", "numpy"
    baseline: str = "numpy twin"  # what the "numpy" variant is
    bytes_per_call: int = 0  # memory traffic of one numba call, for GB/s


def _pair(name: str, shape: tuple[int, ...], dtype: np.dtype, act: int = RELU, label: str | None = None) -> BenchCase:
    args = example_args(name, dtype, shape, act=act)
    numba_kernel = getattr(get_backend("numba"), name)
    numpy_kernel = getattr(get_backend("numpy"), name)
    size = "x".join(map(str, shape))
    return BenchCase(
        label or name,
        size,
        {"numba": (numba_kernel, copy.deepcopy(args)), "numpy": (numpy_kernel, copy.deepcopy(args))},
    )


def softmax_backward_jacobian_loop(dY: np.ndarray, P: np.ndarray, dX: np.ndarray) -> None:
    """The homework way: per example, build diag(p) - p p^T and multiply."""
    for i in range(P.shape[0]):
        p = P[i]
        jacobian = np.diag(p) - np.outer(p, p)
        dX[i] = jacobian @ dY[i]


def bench_cases(quick: bool = True, dtype: str | np.dtype = "float32") -> list[BenchCase]:
    """The (kernel, size) pairs measured; quick = the headline sizes only."""
    dtype = np.dtype(dtype)
    cases: list[BenchCase] = []
    epilogue_sizes = [(128, 512)] if quick else [(64, 100), (128, 512), (256, 1024)]
    class_sizes = [(128, 10)] if quick else [(128, 10), (1024, 100), (256, 1000)]
    for shape in epilogue_sizes:
        cases.append(_pair("bias_act_forward", shape, dtype, label="bias_act_forward relu"))
        cases.append(_pair("act_bias_backward", shape, dtype, label="act_bias_backward relu"))
    for shape in class_sizes:
        cases.append(_pair("softmax_forward", shape, dtype))
        cases.append(_pair("softmax_backward", shape, dtype))
        cases.append(_pair("softmax_cross_entropy", shape, dtype))
        cases.append(_pair("svm_loss", shape, dtype))
    jac_shape = (1024, 100)
    jac = _pair("softmax_backward", jac_shape, dtype, label="softmax_backward vs Jacobian loop")
    numba_fn, args = jac.variants["numba"]
    jac.variants["numpy"] = (softmax_backward_jacobian_loop, copy.deepcopy(args))
    jac.baseline = "per-example Jacobian loop"
    cases.append(jac)
    if not quick:
        mid = (128, 512)
        cases.append(_pair("act_forward", mid, dtype, act=3, label="act_forward sigmoid"))
        cases.append(_pair("act_backward", mid, dtype, act=3, label="act_backward sigmoid"))
        for name in ("cross_entropy", "mse_loss", "sigmoid_bce_loss"):
            cases.append(_pair(name, (128, 10), dtype))
        for name in (
            "batchnorm_train_forward", "batchnorm_eval_forward", "batchnorm_backward",
            "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward",
            "add", "add_into", "copy_into",
        ):
            cases.append(_pair(name, mid, dtype))
        for name in (
            "l2_penalty", "sum_squares", "all_finite", "sgd_update", "momentum_update",
            "nesterov_update", "rmsprop_update", "adamw_update",
        ):
            cases.append(_pair(name, (500_000,), dtype))
    itemsize = np.dtype(dtype).itemsize
    for n in (500_000,) if quick else (500_000, 5_000_000):
        adam = _pair("adam_update", (n,), dtype)
        adam.bytes_per_call = 7 * n * itemsize  # read w, dw, m, v; write w, m, v
        cases.append(adam)
        src = np.random.default_rng(0).random(n).astype(dtype)
        dst = np.empty_like(src)
        bandwidth = BenchCase(
            "adam_update vs np.copyto", f"{n}",
            {"numba": adam.variants["numba"], "numpy": (np.copyto, (dst, src))},
            baseline="np.copyto",
        )
        bandwidth.bytes_per_call = adam.bytes_per_call
        cases.append(bandwidth)
    return cases


def _calibrate(fn: Callable[..., Any], args: tuple[Any, ...], target_s: float) -> int:
    fn(*args)
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn(*args)
        elapsed = time.perf_counter() - start
        if elapsed >= target_s or loops >= 1 << 20:
            return loops
        loops = max(loops * 2, int(loops * target_s / max(elapsed, 1e-9)))


def _measure(case: BenchCase, rounds: int, target_s: float) -> dict[str, float]:
    loops = {key: _calibrate(fn, args, target_s) for key, (fn, args) in case.variants.items()}
    samples: dict[str, list[float]] = {key: [] for key in case.variants}
    for _ in range(rounds):
        for key, (fn, args) in case.variants.items():
            n = loops[key]
            start = time.perf_counter()
            for _ in range(n):
                fn(*args)
            samples[key].append((time.perf_counter() - start) / n)
    return {key: statistics.median(values) for key, values in samples.items()}


def run_kernel_bench(quick: bool = True, dtype: str | np.dtype = "float32") -> list[dict]:
    """Time numba kernels against their NumPy twins; one dict per (kernel, size).

    Keys: kernel, size, dtype, numba_us, numpy_us (the baseline: the NumPy twin
    unless ``baseline`` says otherwise), ratio (numpy / numba), baseline, note.
    ``quick`` runs only the headline sizes with fewer repeats (a few seconds).
    """
    dtype = np.dtype(dtype)
    rounds, target_s = (7, 0.002) if quick else (21, 0.005)
    rows = []
    for case in bench_cases(quick, dtype):
        medians = _measure(case, rounds, target_s)
        numba_s, numpy_s = medians["numba"], medians["numpy"]
        note = ""
        if case.bytes_per_call:
            note = f"numba {case.bytes_per_call / numba_s / 1e9:.0f} GB/s (7 streams)"
            if case.baseline == "np.copyto":
                n = int(case.size)
                adam_gbs = case.bytes_per_call / numba_s / 1e9
                copy_gbs = 2 * n * dtype.itemsize / numpy_s / 1e9
                note = f"{note}; copyto {copy_gbs:.0f} GB/s (2 streams): {adam_gbs / copy_gbs:.0%}"
        rows.append({
            "kernel": case.kernel,
            "size": case.size,
            "dtype": dtype.name,
            "numba_us": numba_s * 1e6,
            "numpy_us": numpy_s * 1e6,
            "ratio": numpy_s / numba_s,
            "baseline": case.baseline,
            "note": note,
        })
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table: kernel, size, numba (µs), numpy (µs), ratio (numpy/numba), note."""
    header = ("kernel", "size", "numba (µs)", "numpy (µs)", "ratio", "note")
    lines = [
        (r["kernel"], r["size"], f"{r['numba_us']:.2f}", f"{r['numpy_us']:.2f}", f"{r['ratio']:.1f}x", r.get("note", ""))
        for r in rows
    ]
    return "\n".join(text_table([header, *lines], align="<<>>><"))
