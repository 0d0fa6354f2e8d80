"""graphnet.ops.lowering: ops get what they run from the lowering context, not by import."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn

OPS_FOLDER = Path(gn.__file__).parent / "ops"


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, relative ones with their leading dots."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            modules.add(base)
            modules.update(f"{base}.{alias.name}" if node.module else base + alias.name for alias in node.names)
    return modules


def test_no_op_imports_the_blas_bindings():
    offenders = {path.name: sorted(m for m in imported_modules(path) if m.rsplit(".", 1)[-1] == "blas")
                 for path in OPS_FOLDER.glob("*.py")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_sgd_gemm_reaches_the_affine_op_through_the_context():
    """The compiler takes the in-backward GEMM from the target and hands a kernel of it over; the op calls it."""
    made, calls = [], []

    class RecordingGemm:
        def __init__(self, gemm):
            self.gemm = gemm

        def at_b_update(self):
            update = self.gemm.at_b_update()
            made.append(self.gemm.dtype)

            def kernel(A, B, C, alpha, beta):
                calls.append((A.shape, B.shape, C.shape))
                update(A, B, C, alpha, beta)

            return kernel

    spec = gn.sequential([{"op": "affine", "units": 5, "activation": "relu"}, {"op": "affine", "units": 3}],
                         input_shape=[4], classes=3, name="two_affines")
    plain = gn.compile(spec, batch_size=6, dtype="float64", seed=0)
    if plain.target.gemm is None:
        pytest.skip("no cblas GEMM here: the plan takes the separate update pass")
    net = gn.compile(spec, batch_size=6, seed=0,
                     target=dataclasses.replace(plain.target, gemm=RecordingGemm(plain.target.gemm)))
    assert "sgd-update-in-backward: affine1.W fused" in net.describe("train_sgd")
    W_before = net.params["affine1.W"].copy()
    rng = np.random.default_rng(0)
    net.step(rng.standard_normal((6, 4)), rng.integers(0, 3, 6), 0.1)
    assert made == [np.dtype("float64")] * 2
    assert sorted(calls) == [((6, 4), (6, 5), (4, 5)), ((6, 5), (6, 3), (5, 3))]
    assert not np.array_equal(net.params["affine1.W"], W_before)


def test_no_op_reads_the_thread_settings_or_the_helper_thread():
    """What an op picks depends on the target it is handed (graphnet.ops.target), not on process state."""
    offenders = {path.name: sorted(m for m in imported_modules(path)
                                   if m.rsplit(".", 1)[-1] in ("threads", "helper_thread", "contention", "config"))
                 for path in OPS_FOLDER.glob("*.py")}
    assert {name: found for name, found in offenders.items() if found} == {}
