"""graphnet.optim: each update rule against the step computed by hand here."""
from __future__ import annotations

import numpy as np
import pytest

from graphnet.gradient_check import rel_error
from graphnet.optim import UPDATE_RULES, adam, rmsprop, sgd, sgd_momentum

N, D = 4, 5


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    monkeypatch.setenv("GRAPHNET_BACKEND", request.param)
    return request.param


def _w_dw():
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return w, dw


def test_sgd(backend):
    w, dw = _w_dw()
    next_w, config = sgd(w, dw, {"learning_rate": 1e-3})
    assert rel_error(next_w, w - 1e-3 * dw) < 1e-12
    next_w, config = sgd(w, dw)
    assert config == {"learning_rate": 1e-2}
    assert rel_error(next_w, w - 1e-2 * dw) < 1e-12


def test_sgd_momentum(backend):
    w, dw = _w_dw()
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v_before = v.copy()
    config = {"learning_rate": 1e-3, "velocity": v}
    next_w, config = sgd_momentum(w, dw, config=config)
    expected_v = 0.9 * v_before - 1e-3 * dw
    assert rel_error(config["velocity"], expected_v) < 1e-8
    assert rel_error(next_w, w + expected_v) < 1e-8
    assert np.array_equal(v, v_before)  # the homework's functional style: inputs untouched
    assert config["momentum"] == 0.9


def test_rmsprop(backend):
    w, dw = _w_dw()
    cache = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    next_w, config = rmsprop(w, dw, {"learning_rate": 1e-2, "cache": cache})
    expected_cache = 0.99 * cache + 0.01 * dw ** 2
    assert rel_error(config["cache"], expected_cache) < 1e-8
    assert rel_error(next_w, w - 1e-2 * dw / (np.sqrt(expected_cache) + 1e-8)) < 1e-8
    assert config["decay_rate"] == 0.99 and config["epsilon"] == 1e-8


def test_adam_increments_t_before_use(backend):
    w, dw = _w_dw()
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    next_w, config = adam(w, dw, {"learning_rate": 1e-2, "m": m, "v": v, "t": 5})
    t = 6
    expected_m = 0.9 * m + 0.1 * dw
    expected_v = 0.999 * v + 0.001 * dw ** 2
    m_hat, v_hat = expected_m / (1 - 0.9 ** t), expected_v / (1 - 0.999 ** t)
    assert config["t"] == t
    assert rel_error(config["m"], expected_m) < 1e-8
    assert rel_error(config["v"], expected_v) < 1e-8
    assert rel_error(next_w, w - 1e-2 * m_hat / (np.sqrt(v_hat) + 1e-8)) < 1e-8


def test_adam_defaults_and_a_run_of_steps():
    w, dw = _w_dw()
    config = None
    ref_w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t in range(1, 11):
        grad = dw * t
        w, config = adam(w, grad, config)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad ** 2
        ref_w = ref_w - 1e-3 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    assert config["t"] == 10 and config["learning_rate"] == 1e-3
    assert config["beta1"] == 0.9 and config["beta2"] == 0.999 and config["epsilon"] == 1e-8
    assert rel_error(w, ref_w) < 1e-10


@pytest.mark.parametrize("name", list(UPDATE_RULES))
def test_every_rule_keeps_dtype_and_shape_and_leaves_inputs_alone(name):
    rule = UPDATE_RULES[name]
    w = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    dw = np.linspace(1, -1, 24).reshape(2, 3, 4)  # float64 gradient for a float32 weight
    w_before, dw_before = w.copy(), dw.copy()
    next_w, config = rule(w, dw, None)
    assert next_w.dtype == np.float32 and next_w.shape == w.shape
    assert np.array_equal(w, w_before) and np.array_equal(dw, dw_before)
    assert np.all(np.sign(next_w - w) == -np.sign(dw))  # a first step moves against the gradient
    next_w2, _ = rule(next_w, dw, config)  # state carried over
    assert next_w2.shape == w.shape
    with pytest.raises(ValueError):
        rule(w, dw[:1], None)


def test_scalar_and_integer_weights():
    next_w, _ = sgd(np.array(3), np.array(1.0), {"learning_rate": 0.5})
    assert next_w.dtype == np.float64 and next_w == 2.5
