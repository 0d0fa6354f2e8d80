"""graphnet.solver.Solver: the notebook's overfitting check, the defect fixes and the fused fast path."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest

import graphnet as gn
import graphnet.data as gd
from graphnet.errors import DataError
from graphnet.layers import affine_backward, affine_forward, softmax_loss
from graphnet.models import FullyConnectedNet
from graphnet.optim import sgd, sgd_momentum
from graphnet.solver import Solver, load_solver_checkpoint


class LinearSoftmax:
    """A homework-style model with a plain dict of params (no graphnet network): the generic path."""

    def __init__(self, dim: int, classes: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.params = {"W": 1e-2 * rng.standard_normal((dim, classes)), "b": np.zeros(classes)}
        self.seen: list[np.ndarray] = []  # the training rows, in order
        self.eval_batches: list[int] = []

    def loss(self, X, y=None):
        scores, cache = affine_forward(X, self.params["W"], self.params["b"])
        if y is None:
            self.eval_batches.append(len(X))
            return scores
        self.seen.append(np.array(X[:, 0]))
        loss, dscores = softmax_loss(scores, y)
        _, dW, db = affine_backward(dscores, cache)
        return loss, {"W": dW, "b": db}


def _blobs(n_train=60, n_val=30, features=4, classes=3):
    X, y = gd.blobs(points=(n_train + n_val) // classes, classes=classes, features=features, std=1.0, seed=0)
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]
    return {"X_train": X[:n_train], "y_train": y[:n_train], "X_val": X[n_train:], "y_val": y[n_train:]}


def _small_fashion_mnist():
    try:
        data = gd.load("fashion-mnist", stratify=False)  # the examples the seeded overfit below was tuned on
    except DataError:  # not installed: a synthetic stand-in of the same shape
        X, y = gd.blobs(points=30, classes=10, features=784, std=4.0, seed=0)
        order = np.random.default_rng(0).permutation(len(X))
        X, y = X[order].astype(np.float32), y[order]
        return {"X_train": X[:50], "y_train": y[:50], "X_val": X[50:150], "y_val": y[50:150]}
    return {"X_train": data["X_train"][:50], "y_train": data["y_train"][:50],
            "X_val": data["X_val"][:100], "y_val": data["y_val"][:100]}


def test_overfits_50_examples(capsys):
    np.random.seed(231)
    small = _small_fashion_mnist()
    model = FullyConnectedNet([100, 100], input_dim=784, num_classes=10, weight_scale=1e-1)
    solver = Solver(model, small, print_every=10, num_epochs=20, batch_size=25, update_rule="adam",
                    optim_config={"learning_rate": 5e-3})
    assert solver.fused
    solver.train()
    out = capsys.readouterr().out
    assert "(Iteration 1 / 40) loss:" in out and "(Epoch 20 / 20) train acc: 1.000000" in out
    assert len(solver.loss_history) == 40 and len(solver.train_acc_history) == 21
    assert solver.train_acc_history[-1] == 1.0
    assert solver.best_val_acc == max(solver.val_acc_history)


def test_every_epoch_is_a_permutation_including_the_short_last_batch():
    np.random.seed(0)
    data = _blobs(n_train=10)
    data["X_train"] = data["X_train"].copy()
    data["X_train"][:, 0] = np.arange(10)  # feature 0 names the row
    model = LinearSoftmax(4, 3)
    solver = Solver(model, data, batch_size=4, num_epochs=3, verbose=False)
    solver.train()
    assert [len(rows) for rows in model.seen] == [4, 4, 2] * 3  # ceil(10 / 4) = 3 iterations per epoch
    for epoch in range(3):
        rows = np.concatenate(model.seen[3 * epoch:3 * epoch + 3])
        assert sorted(rows.astype(int)) == list(range(10))  # each example exactly once
    assert solver.epoch == 3


def test_a_last_batch_of_one_is_dropped_for_a_batchnorm_model():
    """61 examples in batches of 20: three of 20 and one of 1, which batchnorm cannot train on."""
    np.random.seed(0)
    data = _blobs(n_train=61)
    model = FullyConnectedNet([8], input_dim=4, num_classes=3, normalization="batchnorm", dtype=np.float64)
    seen = []
    step = model.net.step  # adam's update inside backward
    model.net.step = lambda X, y, update=None: (seen.append(len(X)), step(X, y, update))[1]
    solver = Solver(model, data, batch_size=20, num_epochs=2, update_rule="adam", verbose=False)
    solver.train()
    assert seen == [20, 20, 20] * 2 and solver.epoch == 2 and np.isfinite(solver.loss_history).all()
    plain = Solver(FullyConnectedNet([8], input_dim=4, num_classes=3, dtype=np.float64), data, batch_size=20,
                   num_epochs=1, verbose=False)
    plain.train()
    assert len(plain.loss_history) == 4  # without batchnorm the batch of one is trained on


def test_the_last_iteration_check_fires_and_epochs_are_counted(capsys):
    np.random.seed(0)
    solver = Solver(LinearSoftmax(4, 3), _blobs(n_train=10), batch_size=4, num_epochs=2, print_every=100)
    solver.train()
    out = capsys.readouterr().out
    # checks after the first iteration, after each of the 2 epochs (the last one is the last iteration)
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 3
    assert "(Epoch 2 / 2)" in out and len(solver.loss_history) == 6


def test_best_params_start_as_a_copy_and_come_back_at_the_end():
    np.random.seed(0)
    model = LinearSoftmax(4, 3)
    solver = Solver(model, _blobs(), num_epochs=0, verbose=False)
    assert set(solver.best_params) == {"W", "b"}
    assert solver.best_params["W"] is not model.params["W"]
    assert np.array_equal(solver.best_params["W"], model.params["W"])
    model.params["W"] += 1
    assert not np.array_equal(solver.best_params["W"], model.params["W"])  # a copy, not a view
    solver.train()  # no iterations: the initial copy is swapped back in
    assert np.array_equal(model.params["W"], solver.best_params["W"])
    assert model.params["W"] is not solver.best_params["W"]

    np.random.seed(0)
    model = LinearSoftmax(4, 3)
    solver = Solver(model, _blobs(), num_epochs=3, batch_size=10, verbose=False,
                    optim_config={"learning_rate": 0.5})
    solver.train()
    assert solver.best_val_acc == max(solver.val_acc_history) > 0.6
    for k in model.params:
        assert np.array_equal(model.params[k], solver.best_params[k])


def test_check_accuracy_batches_with_a_short_last_batch():
    np.random.seed(0)
    model = LinearSoftmax(4, 3)
    data = _blobs()
    solver = Solver(model, data, verbose=False)
    X = np.repeat(data["X_val"], 9, axis=0)[:250]
    y = np.argmax(model.loss(X), axis=1)
    model.eval_batches.clear()
    assert solver.check_accuracy(X, y, batch_size=100) == 1.0
    assert model.eval_batches == [100, 100, 50]
    model.eval_batches.clear()
    assert solver.check_accuracy(X, y, num_samples=30, batch_size=100) == 1.0
    assert model.eval_batches == [30]


def test_lr_decay_and_the_generic_update_path():
    np.random.seed(0)
    model = LinearSoftmax(4, 3)
    solver = Solver(model, _blobs(), update_rule="sgd_momentum", optim_config={"learning_rate": 0.1},
                    lr_decay=0.5, num_epochs=3, batch_size=20, verbose=False)
    assert not solver.fused
    solver.train()
    assert solver.loss_history[-1] < solver.loss_history[0]
    for config in solver.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(0.1 * 0.5 ** 3)
        assert "velocity" in config


@pytest.mark.parametrize("rule, reg", [("sgd_momentum", 0.01), ("sgd", 0.0)])
def test_fused_path_matches_per_parameter_updates(rule, reg):
    """sgd with reg=0 is the path whose weight updates run inside the backward GEMMs."""
    data = _blobs()
    rules = {"sgd_momentum": ("momentum", sgd_momentum), "sgd": ("sgd", sgd)}

    def run(update_rule):
        np.random.seed(7)
        model = FullyConnectedNet([6], input_dim=4, num_classes=3, normalization="layernorm", reg=reg,
                                  dtype=np.float64, seed=3)
        solver = Solver(model, data, update_rule=update_rule, optim_config={"learning_rate": 0.05, "momentum": 0.8}
                        if rule == "sgd_momentum" else {"learning_rate": 0.05},
                        lr_decay=0.9, num_epochs=2, batch_size=16, verbose=False)
        solver.train()
        return solver, model

    fused, fused_model = run(rule)
    reference_rule = rules[rule][1]
    plain, plain_model = run(lambda w, dw, config: reference_rule(w, dw, config))  # a custom callable
    assert fused.fused and not plain.fused
    assert fused._optimizer.rule == rules[rule][0]
    assert fused._optimizer.fuse_update  # sgd inside the backward GEMMs, momentum right after each backward step
    kind = "train_sgd" if rule == "sgd" else "train_update"
    assert {k for k, _ in fused._optimizer.net.stats.plans if k.startswith("train")} == {kind}
    assert fused._optimizer.learning_rate == pytest.approx(0.05 * 0.9 ** 2)
    assert np.allclose(fused.loss_history, plain.loss_history, rtol=1e-10)
    for k in fused_model.params:
        assert np.allclose(fused_model.params[k], plain_model.params[k], rtol=1e-9, atol=1e-12)


def test_a_raw_compiled_network_takes_the_fast_path():
    np.random.seed(0)
    spec = gn.sequential([{"op": "affine", "units": 8, "activation": "relu"}, {"op": "affine", "units": 3}],
                         input_shape=[4], classes=3)
    net = gn.compile(spec, batch_size=16, dtype="float32", seed=0)
    data = _blobs()  # float64 data into a float32 network
    solver = Solver(net, data, update_rule="adam", optim_config={"learning_rate": 1e-2}, num_epochs=5,
                    batch_size=16, verbose=False)
    assert solver.fused
    solver.train()
    assert solver.best_val_acc > 0.8
    assert set(solver.best_params) == set(net.params)


def test_state_keys_in_optim_config_take_the_generic_path():
    model = FullyConnectedNet([4], input_dim=4, num_classes=3, seed=0)
    solver = Solver(model, _blobs(), update_rule="adam", optim_config={"learning_rate": 1e-3, "t": 10},
                    verbose=False)
    assert not solver.fused


def test_unknown_keywords_and_rules_are_value_errors():
    model, data = LinearSoftmax(4, 3), _blobs()
    with pytest.raises(ValueError, match="learning_rate"):
        Solver(model, data, learning_rate=1e-3)
    with pytest.raises(ValueError, match="adagrad"):
        Solver(model, data, update_rule="adagrad")


def test_histories_and_checkpoints_are_npz_without_pickle(tmp_path, capsys):
    np.random.seed(0)
    model = LinearSoftmax(4, 3)
    name = str(tmp_path / "run")
    solver = Solver(model, _blobs(), num_epochs=2, batch_size=30, checkpoint_name=name,
                    optim_config={"learning_rate": 0.1})
    solver.train()
    assert 'Saving checkpoint to "' in capsys.readouterr().out
    files = sorted(os.path.basename(f) for f in glob.glob(str(tmp_path / "*")))
    assert files == ["run_epoch_0.npz", "run_epoch_1.npz", "run_epoch_2.npz"]  # no temporary leftovers
    checkpoint = load_solver_checkpoint(name + "_epoch_2.npz")
    assert checkpoint["epoch"] == 2 and checkpoint["update_rule"] == "sgd"
    assert checkpoint["optim_config"] == {"learning_rate": 0.1}
    assert checkpoint["num_val_samples"] is None and checkpoint["num_train_samples"] == 1000
    assert checkpoint["loss_history"] == solver.loss_history
    assert set(checkpoint["params"]) == {"W", "b"}

    history_file = tmp_path / "histories.npz"
    solver.record_histories_as_npz(str(history_file))
    with np.load(history_file, allow_pickle=False) as npz:
        assert np.allclose(npz["loss_history"], solver.loss_history)
        assert np.allclose(npz["train_acc_history"], solver.train_acc_history)
        assert np.allclose(npz["val_acc_history"], solver.val_acc_history)
    assert sorted(os.listdir(tmp_path))[-1] == "run_epoch_2.npz" and len(os.listdir(tmp_path)) == 4


# ---- regression and binary networks on the homework's data dict --------------------------------


def _one_output_net(loss: str, features: int) -> gn.CompiledNetwork:
    return gn.compile(gn.parse_network({
        "inputs": {"x": {"shape": [features]}}, "labels": {"y": {"shape": [1]}},
        "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 16, "activation": "relu"},
                  {"id": "fc2", "op": "affine", "inputs": ["fc1"], "units": 1},
                  {"id": "loss", "op": loss, "inputs": ["fc2", "y"]}],
        "outputs": ["fc2"], "loss": "loss"}), batch_size=32, seed=0)


def test_a_regression_network_trains_on_float_targets_and_reports_r2():
    from tests._support.task_data import linear_data

    X, y = linear_data()  # y: (N,) float64, the homework's layout
    data = {"X_train": X[:300], "y_train": y[:300], "X_val": X[300:], "y_val": y[300:]}
    solver = Solver(_one_output_net("mse", 3), data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    num_epochs=20, batch_size=32, verbose=False)
    solver.train()
    assert solver.best_val_acc > 0.9  # R² on the validation split
    predicted = solver.model.predict(X[300:].astype(np.float32))[:, 0]
    residual, total = ((predicted - y[300:]) ** 2).sum(), ((y[300:] - y[300:].mean()) ** 2).sum()
    assert solver.val_acc_history[-1] == pytest.approx(1 - residual / total, rel=1e-4)


def test_a_binary_network_trains_on_0_1_labels_and_thresholds_its_accuracy():
    from tests._support.task_data import separable_blobs

    X, y = separable_blobs()  # y: (N,) int 0/1
    data = {"X_train": X[:300], "y_train": y[:300], "X_val": X[300:], "y_val": y[300:]}
    solver = Solver(_one_output_net("sigmoid_binary_cross_entropy", 2), data, update_rule="adam",
                    optim_config={"learning_rate": 1e-2}, num_epochs=5, batch_size=32, verbose=False)
    solver.train()
    assert solver.best_val_acc > 0.8
    assert solver.val_acc_history[-1] == np.mean(solver.model.predict(X[300:].astype(np.float32)) == y[300:])

# ---- the whole model state, and nothing silently corrupted --------------------------------------


def _bn_model(seed=1):
    np.random.seed(seed)
    return FullyConnectedNet([16], input_dim=4, num_classes=3, normalization="batchnorm", dtype=np.float64,
                             seed=seed, weight_scale=0.1)


def _noisy_blobs():
    """80 training and 40 validation examples of overlapping blobs (val accuracy goes up and down)."""
    X, y = gd.blobs(points=40, classes=3, features=4, std=2.5, seed=0)
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]
    return {"X_train": X[:80], "y_train": y[:80], "X_val": X[80:], "y_val": y[80:]}


def test_the_best_model_comes_back_with_its_running_statistics():
    model, data = _bn_model(), _noisy_blobs()
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 0.05}, num_epochs=6,
                    batch_size=10, verbose=False)
    states = []
    check = solver._check

    def recording_check():
        check()
        states.append({k: model.net.state[k].copy() for k in model.net.state})

    solver._check = recording_check
    solver.train()
    best = solver.val_acc_history.index(solver.best_val_acc)  # the first check that reached it
    for name in model.net.state:
        np.testing.assert_array_equal(model.net.state[name], states[best][name], err_msg=name)
        np.testing.assert_array_equal(solver.best_state[name], states[best][name], err_msg=name)
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc


def test_a_homework_model_gets_its_bn_params_statistics_back():
    class WithBnParams(LinearSoftmax):
        def __init__(self):
            super().__init__(4, 3)
            self.bn_params = [{"mode": "train", "running_mean": np.zeros(4), "running_var": np.ones(4)}]

        def loss(self, X, y=None):
            if y is not None:
                self.bn_params[0]["running_mean"] += 1.0  # a statistic that drifts with every step
            return super().loss(X, y)

    np.random.seed(0)
    model = WithBnParams()
    solver = Solver(model, _blobs(), num_epochs=3, batch_size=20, verbose=False)
    solver.train()
    assert model.bn_params[0]["running_mean"][0] == solver.best_state["bn_params[0].running_mean"][0]
    assert model.bn_params[0]["running_mean"][0] <= 9.0


def _with_a_nan_example():
    data = _noisy_blobs()
    data["X_train"] = data["X_train"].copy()
    data["X_train"][5, 2] = np.nan
    return data


@pytest.mark.parametrize("rule", ["adam", "sgd", "custom"])
def test_a_nan_batch_is_skipped_with_a_warning_and_changes_nothing(rule):
    data = _with_a_nan_example()
    model = _bn_model()
    update_rule = (lambda w, dw, config: sgd(w, dw, config)) if rule == "custom" else rule
    solver = Solver(model, data, update_rule=update_rule, optim_config={"learning_rate": 0.05}, num_epochs=3,
                    batch_size=10, verbose=False)
    with pytest.warns(RuntimeWarning, match=r"iteration \d+: loss is nan; first non-finite value at node input "
                                            r"'x'; batch skipped, the model is unchanged"):
        solver.train()
    assert len(solver.skipped_iterations) == 3  # once per epoch
    assert all(np.isnan(solver.loss_history[i - 1]) for i in solver.skipped_iterations)
    for name in model.net.state:
        assert np.isfinite(model.net.state[name]).all(), name
    for name in model.params:
        assert np.isfinite(model.params[name]).all(), name
    assert solver.val_acc_history[-1] > 0.8


def test_a_homework_model_skips_a_nan_batch_without_touching_its_weights():
    data = _blobs()
    data["X_train"] = data["X_train"].copy()
    data["X_train"][0, 0] = np.nan
    np.random.seed(0)
    model = LinearSoftmax(4, 3)
    solver = Solver(model, data, num_epochs=2, batch_size=20, verbose=False, optim_config={"learning_rate": 0.5})
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="batch skipped"):
        solver.train()
    assert len(solver.skipped_iterations) == 2
    assert np.isfinite(model.params["W"]).all()


def test_training_that_cannot_progress_raises():
    data = _noisy_blobs()
    data["X_train"] = np.full_like(data["X_train"], np.nan)
    solver = Solver(_bn_model(), data, update_rule="adam", num_epochs=3, batch_size=20, verbose=False)
    with pytest.warns(RuntimeWarning), pytest.raises(gn.NonFiniteError, match=r"not finite for 4 iterations "
                                                                              r"in a row \(iterations 1 to 4"):
        solver.train()
    assert solver.skipped_iterations == [1, 2, 3, 4]
