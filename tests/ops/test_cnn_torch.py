"""Random CNN specs (tests/_support/cnn_cases.py: conv, pooling, batchnorm, add, concat, flatten, affine
with odd sizes, strides and paddings) against PyTorch autograd in float64: the eval-mode outputs,
the train-mode loss, every gradient and the running statistics after the step.

CI has no torch (it installs the README's `test` extra, and torch's default wheel on PyPI
is the 2+ GB CUDA build): `test_committed_cases_match_pytorch` checks graphnet against
torch's results committed in tests/fixtures/cnn_torch/cases.npz (make_fixtures.py writes them
from the same case builder); where torch is installed, the hypothesis test draws new
networks and runs torch live."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphnet as gn

from tests._support.cnn_cases import case_arrays, cnn_specs, torch_run
from tests._support.paths import FIXTURES

CASES = FIXTURES / "cnn_torch" / "cases.npz"
TOL = dict(rtol=1e-9, atol=1e-11)


def load_cases() -> dict[int, dict]:
    with np.load(CASES, allow_pickle=False) as data:
        cases: dict[int, dict] = {}
        for key in data.files:
            index, _, rest = key.partition("/")
            case = cases.setdefault(int(index), {"param": {}, "state": {}, "grad": {}, "new_state": {}})
            kind, _, name = rest.partition("/")
            if name:
                case[kind][name] = data[key]
            else:
                case[kind] = data[key]
    return cases


def check(doc: dict, params: dict, state: dict, X: np.ndarray, y: np.ndarray, expected: dict, backend: str) -> None:
    net = gn.compile(gn.parse_network(doc), batch_size=len(X), dtype="float64", backend=backend)
    for name, value in params.items():
        net.params[name] = value
    for name, value in state.items():
        net.state[name] = value
    np.testing.assert_allclose(net.forward(X), expected["outputs"], **TOL, err_msg="eval-mode outputs")
    loss, grads = net.loss(X, y)
    np.testing.assert_allclose(loss, expected["loss"], **TOL, err_msg="train-mode loss")
    assert set(grads) == set(expected["grad"])
    for name, grad in expected["grad"].items():
        np.testing.assert_allclose(grads[name], grad, **TOL, err_msg=f"gradient of {name}")
    for name, value in expected["new_state"].items():
        np.testing.assert_allclose(net.state[name], value, **TOL, err_msg=f"{name} after the step")


CASE_INDICES = sorted(load_cases()) if CASES.exists() else []


@pytest.fixture(scope="module")
def cases() -> dict[int, dict]:
    return load_cases()


def test_the_committed_cases_cover_the_image_ops(cases):
    assert len(cases) >= 30
    ops = {node["op"] for case in cases.values() for node in json.loads(str(case["spec"]))["nodes"]}
    assert {"conv2d", "max_pool2d", "avg_pool2d", "global_avg_pool", "batchnorm", "add", "concat", "flatten"} <= ops
    paddings = {json.dumps(node.get("padding")) for case in cases.values()
                for node in json.loads(str(case["spec"]))["nodes"] if node["op"] == "conv2d"}
    assert {'"same"', '"valid"'} <= paddings and any(p.startswith("[") for p in paddings)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("index", CASE_INDICES)
def test_committed_cases_match_pytorch(cases, index, backend):
    case = cases[index]
    expected = {"outputs": case["outputs"], "loss": float(case["loss"]), "grad": case["grad"],
                "new_state": case["new_state"]}
    check(json.loads(str(case["spec"])), case["param"], case["state"], case["X"], case["y"], expected, backend)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=cnn_specs())
def test_random_cnns_match_pytorch_live(doc):
    pytest.importorskip("torch", reason="torch is a test-only dependency (pip install torch==2.13.0); "
                                        "test_committed_cases_match_pytorch checks committed results without it")
    params, state, X, y = case_arrays(doc, 0)
    result = torch_run(doc, params, state, X, y)
    check(doc, params, state, X, y, {"outputs": result["outputs"], "loss": result["loss"], "grad": result["grads"],
                                     "new_state": result["state"]}, "numba")
