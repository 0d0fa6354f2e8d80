"""graphnet.models: the notebooks' model checks, on networks compiled from specs."""
from __future__ import annotations

import numpy as np
import pytest

from graphnet import NetworkSpec
from graphnet.gradient_check import eval_numerical_gradient, rel_error
from graphnet.models import FullyConnectedNet, TwoLayerNet, fc_net_spec


def _normwise(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||): robust to entries whose gradient is ~0."""
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b)))


def _check_every_param(model, X, y, tol=5e-8):
    """The notebook's check: numeric gradient of model.loss(X, y)[0] through model.params[name]."""
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name in sorted(grads):
        f = lambda _: model.loss(X, y)[0]  # noqa: E731
        numeric = eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5)
        assert grads[name].shape == model.params[name].shape
        if np.abs(numeric).max() < 1e-8:  # a bias before batchnorm: exactly 0
            assert np.abs(grads[name]).max() < 1e-12, name
        else:
            assert _normwise(grads[name], numeric) < tol, name
    return loss


def _softmax_ce(scores, y):
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean()


# ---- TwoLayerNet ----------------------------------------------------------------------------------


def test_two_layer_net_notebook_check():
    np.random.seed(0)
    N, D, H, C = 3, 5, 50, 7
    std = 1e-3
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=std)
    assert list(model.params) == ["W1", "b1", "W2", "b2"]
    assert abs(model.params["W1"].std() - std) < std / 10 and abs(model.params["W2"].std() - std) < std / 10
    assert np.all(model.params["b1"] == 0) and np.all(model.params["b2"] == 0)
    model.params["W1"] = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T  # a transposed, non-contiguous view
    W1, b1, W2, b2 = (np.array(model.params[k]) for k in ("W1", "b1", "W2", "b2"))
    expected_scores = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    scores = model.loss(X)
    assert np.abs(scores - expected_scores).sum() < 1e-6
    y = np.asarray([0, 5, 1])
    loss, grads = model.loss(X, y)
    assert abs(loss - _softmax_ce(expected_scores, y)) < 1e-10
    model.reg = 1.0  # set after construction, as the notebook does
    loss, grads = model.loss(X, y)
    expected = _softmax_ce(expected_scores, y) + 0.5 * 1.0 * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    assert abs(loss - expected) < 1e-10
    for reg in (0.0, 0.7):
        model.reg = reg
        _check_every_param(model, X, y)


def test_two_layer_net_defaults():
    model = TwoLayerNet(seed=0)
    assert model.params["W1"].shape == (3 * 32 * 32, 100) and model.params["W2"].shape == (100, 10)
    assert abs(model.params["W1"].std() - 1e-2) < 1e-3  # issue 6's weight_scale default
    assert model.dtype is np.float64 and model.reg == 0.0 and model.num_layers == 2


# ---- FullyConnectedNet ---------------------------------------------------------------------------

N, D, H1, H2, C = 8, 15, 20, 30, 10


@pytest.fixture
def batch():
    rng = np.random.default_rng(231)
    return rng.standard_normal((N, D)), rng.integers(C, size=N)


@pytest.mark.parametrize("reg", [0.0, 3.14])
def test_fc_net_gradients_with_and_without_reg(batch, reg):
    X, y = batch
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=reg, weight_scale=5e-2,
                              dtype=np.float64, seed=0)
    loss = _check_every_param(model, X, y)
    # the loss by hand: the network written out in NumPy, plus 0.5 * reg * sum W^2
    p = {k: np.array(v) for k, v in model.params.items()}
    h = np.maximum(X @ p["W1"] + p["b1"], 0)
    h = np.maximum(h @ p["W2"] + p["b2"], 0)
    scores = h @ p["W3"] + p["b3"]
    penalty = 0.5 * reg * sum(np.sum(p[f"W{i}"] ** 2) for i in (1, 2, 3))
    assert abs(loss - (_softmax_ce(scores, y) + penalty)) < 1e-10
    assert rel_error(model.loss(X), scores) < 1e-10


@pytest.mark.parametrize("options", [
    {"normalization": "batchnorm"},
    {"use_batchnorm": True, "reg": 0.5},
    {"normalization": "layernorm", "reg": 0.7},
    {"dropout": 0.3},
    {"dropout_keep_ratio": 0.5, "normalization": "batchnorm"},
])
def test_fc_net_normalization_and_dropout_gradients(batch, options):
    X, y = batch
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, weight_scale=5e-2, dtype=np.float64,
                              seed=123, **options)
    expected = ["W1", "b1", "W2", "b2", "W3", "b3"]
    if model.normalization:
        expected = ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"]
        assert np.all(model.params["gamma1"] == 1) and np.all(model.params["beta2"] == 0)
    assert list(model.params) == expected
    _check_every_param(model, X, y)


def test_seeded_dropout_repeats_its_mask_and_the_seed_matters(batch):
    X, y = batch
    make = lambda seed: FullyConnectedNet([H1], input_dim=D, num_classes=C, dropout=0.5,  # noqa: E731
                                          dtype=np.float64, seed=seed)
    model = make(1)
    assert model.use_dropout and model.dropout_param == {"mode": "train", "p": 0.5, "seed": 1}
    assert model.loss(X, y)[0] == model.loss(X, y)[0]
    other = make(2)
    other.params = model.params
    assert other.loss(X, y)[0] != model.loss(X, y)[0]
    scores = model.loss(X)  # test mode: no dropout
    assert model.dropout_param["mode"] == "test"
    assert np.array_equal(scores, model.loss(X))


def test_params_are_live_views_and_grads_are_not_overwritten(batch):
    X, y = batch
    model = FullyConnectedNet([H1], input_dim=D, num_classes=C, dtype=np.float64, seed=0)
    W1 = model.params["W1"]
    loss0, grads0 = model.loss(X, y)
    kept = grads0["W1"].copy()
    W1 += 0.1  # in place, as eval_numerical_gradient does
    loss1, grads1 = model.loss(X, y)
    assert loss1 != loss0
    assert np.array_equal(grads0["W1"], kept)  # the earlier grads are untouched
    assert np.shares_memory(model.params["W1"], model.net.params["fc1.W"])
    model.params["b1"] = np.arange(H1)  # ints are cast in
    assert model.params["b1"][3] == 3.0
    snapshot = {k: np.array(v) for k, v in model.params.items()}
    model.params["W1"] *= 0
    model.params = snapshot  # whole-dict assignment copies each
    assert np.array_equal(model.params["W1"], snapshot["W1"])
    with pytest.raises(KeyError):
        model.params["W9"] = np.zeros(1)


def test_any_input_dtype_and_shape_and_label_dtype():
    rng = np.random.default_rng(0)
    model = FullyConnectedNet([10], input_dim=3 * 4 * 5, num_classes=4, seed=0)  # float32 model
    assert model.dtype is np.float32
    X = rng.standard_normal((6, 3, 4, 5))  # float64 images
    y = np.array([0, 1, 2, 3, 0, 1], dtype=np.uint8)
    scores = model.loss(X)
    assert scores.shape == (6, 4) and scores.dtype == np.float32
    loss, grads = model.loss(X, y)
    assert np.isfinite(loss) and grads["W1"].dtype == np.float32
    with pytest.raises(ValueError, match="input"):
        model.loss(np.zeros((6, 7)))
    with pytest.raises(ValueError, match="labels"):
        model.loss(X, y[:3])


def test_batchnorm_params_and_test_mode_statistics():
    rng = np.random.default_rng(0)
    model = FullyConnectedNet([16], input_dim=5, num_classes=3, normalization="batchnorm", dtype=np.float64,
                              seed=0)
    bn = model.bn_params[0]
    assert bn["momentum"] == 0.9 and bn["eps"] == 1e-5
    X = rng.standard_normal((200, 5)) * 3 + 1
    y = rng.integers(3, size=200)
    for _ in range(60):
        model.loss(X, y)
    assert bn["mode"] == "train"
    h = X @ model.params["W1"] + model.params["b1"]
    # live views of the network's state; the compiled batchnorm starts from mean 0, var 1
    keep = 0.9 ** 60
    assert np.allclose(bn["running_mean"], (1 - keep) * h.mean(axis=0), rtol=1e-8)
    assert np.allclose(bn["running_var"], keep + (1 - keep) * h.var(axis=0), rtol=1e-8)
    model.loss(X)
    assert bn["mode"] == "test"


def test_reg_is_the_spec_l2_and_recompiles_keeping_parameters(batch):
    X, y = batch
    model = FullyConnectedNet([H1], input_dim=D, num_classes=C, reg=0.1, dtype=np.float64, seed=0)
    assert isinstance(model.spec, NetworkSpec) and model.spec.l2 == 0.1
    before = {k: np.array(v) for k, v in model.params.items()}
    loss_a = model.loss(X, y)[0]
    model.reg = 0.2
    assert model.spec.l2 == 0.2 and model.reg == 0.2
    assert all(np.array_equal(model.params[k], v) for k, v in before.items())
    penalty = 0.5 * sum(np.sum(before[f"W{i}"] ** 2) for i in (1, 2))
    assert abs(model.loss(X, y)[0] - loss_a - 0.1 * penalty) < 1e-10


@pytest.mark.parametrize("initialization, std", [("he", lambda fan_in, fan_out: np.sqrt(2 / fan_in)),
                                                 ("xavier", lambda fan_in, fan_out: np.sqrt(2 / (fan_in + fan_out)))])
def test_initializations(initialization, std):
    model = FullyConnectedNet([400], input_dim=300, num_classes=10, initialization=initialization, seed=0)
    assert abs(model.params["W1"].std() / std(300, 400) - 1) < 0.02
    zero = FullyConnectedNet([4], input_dim=3, num_classes=2, initialization="zero")
    assert not np.any(zero.params["W1"])
    with pytest.raises(ValueError):
        FullyConnectedNet([4], input_dim=3, num_classes=2, initialization="orthogonal")
    with pytest.raises(ValueError):
        FullyConnectedNet([4], input_dim=3, num_classes=2, normalization="groupnorm")
    with pytest.raises(ValueError):
        FullyConnectedNet([4], input_dim=3, num_classes=2, dropout=0.5, dropout_keep_ratio=0.5)


def test_weights_follow_numpy_global_seed_without_a_seed():
    np.random.seed(5)
    a = FullyConnectedNet([4], input_dim=3, num_classes=2)
    np.random.seed(5)
    b = FullyConnectedNet([4], input_dim=3, num_classes=2)
    assert np.array_equal(a.params["W1"], b.params["W1"])
    assert not a.use_dropout and a.dropout_param == {} and a.bn_params == []


def test_fc_net_spec_is_a_plain_spec():
    spec = fc_net_spec([8, 6], 5, 3, dropout=0.25, normalization="layernorm", reg=0.01)
    assert [n.id for n in spec.nodes] == ["fc1", "ln1", "relu1", "drop1", "fc2", "ln2", "relu2", "drop2", "fc3",
                                          "loss"]
    assert spec.outputs == ["fc3"] and spec.l2 == 0.01
    assert spec.node("drop1").rate == 0.25
