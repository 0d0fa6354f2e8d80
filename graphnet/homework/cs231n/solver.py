"""The homework's Solver (CS231n `solver.py`), with its known defects fixed.

    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=100, print_every=100)
    solver.train()

`model` is anything with ``params`` (a dict of arrays) and ``loss(X, y=None)``
(scores without y, ``(loss, grads)`` with y). `data` holds X_train, y_train,
X_val, y_val. Keywords (all optional): update_rule ('sgd', 'sgd_momentum',
'rmsprop', 'adam' or a callable with the `graphnet.homework.cs231n.optim` contract),
optim_config, lr_decay, batch_size (100), num_epochs (10),
num_train_samples (1000), num_val_samples (None: all), checkpoint_name,
print_every (10), verbose (True). An unknown keyword or rule is a ValueError.

Fast path: when the model is a graphnet `CompiledNetwork`, or wraps one as
``model.net`` (`graphnet.homework.cs231n.models`), and the rule is one of the four named
ones, each iteration is one train step of the network plus ONE fused
`gn.Optimizer` update over its flat parameter buffer (sgd -> sgd,
sgd_momentum -> momentum, rmsprop -> rmsprop, adam -> adam; lr_decay
scales the optimizer's learning_rate each epoch) instead of one Python
update per parameter. (Seeded dropout of a `graphnet.homework.cs231n.models`
model repeats its mask on every ``model.loss`` call, as in the homework; the
fast path draws fresh masks.)

A batch whose loss is not finite (NaN or inf) is skipped, on either path:
the model is left exactly as it was (parameters, batchnorm running
statistics, optimizer state), its loss is recorded in loss_history as is,
its iteration (counted from 1) in skipped_iterations, and a RuntimeWarning
names it (and, for a graphnet network, the first non-finite node). When an
epoch's worth of batches in a row is skipped, training cannot progress:
train() raises NonFiniteError.

The best model is the whole model state: best_params and, for a graphnet
network (or a homework model with ``bn_params`` holding running_mean and
running_var), best_state, the batchnorm running statistics at the best
check. train() swaps both back in, so ``check_accuracy(X_val, y_val)``
after train() reproduces best_val_acc.

Fixed homework defects:

- epochs are permutations: every example is seen exactly once per epoch,
  the last partial batch included, so an epoch has ceil(N / batch_size)
  iterations (the homework samples batches with replacement and has
  floor(N / batch_size) iterations per epoch); with batchnorm, which cannot
  train on one example, a last batch of one is dropped;
- the check after the last iteration fires (``t == num_iterations - 1``);
- best_params starts as a copy of the initial parameters (never empty) and
  the first check always records; swapping them back in at the end copies;
- check_accuracy subsamples without replacement and keeps the short last batch;
- checkpoints are ``<checkpoint_name>_epoch_<e>.npz`` files without pickle,
  written atomically (see `load_solver_checkpoint`).

Batches and subsamples are drawn from NumPy's global random state, so
``np.random.seed(...)`` makes a run repeatable, as in the homework.
"""
from __future__ import annotations

import json
import math
import warnings
from typing import Any, Callable, Mapping

import numpy as np

from ...compiler.plan import min_batch
from ...data import check_targets
from ...errors import NonFiniteError
from ...model.compiled import CompiledNetwork
from ...ops.tasks import predictions as task_predictions
from ...ops.tasks import score, task_of
from ...runtime.optimizer import Optimizer
from ...system.fileio import write_npz_atomic
from ...training import batches_per_epoch
from . import optim

__all__ = ["Solver", "load_solver_checkpoint"]

_DEFAULTS: dict[str, Any] = {
    "update_rule": "sgd",
    "optim_config": None,
    "lr_decay": 1.0,
    "batch_size": 100,
    "num_epochs": 10,
    "num_train_samples": 1000,
    "num_val_samples": None,
    "checkpoint_name": None,
    "print_every": 10,
    "verbose": True,
}


def _compiled_network(model: Any) -> CompiledNetwork | None:
    """The CompiledNetwork that `model` is or wraps (as `model.net`), else None."""
    if isinstance(model, CompiledNetwork):
        return model
    net = getattr(model, "net", None)
    return net if isinstance(net, CompiledNetwork) else None


def _running_statistics(model: Any) -> dict[str, np.ndarray]:
    """Live views of the model's batchnorm running statistics, by name: a graphnet
    network's `state`, else a homework model's ``bn_params[i]['running_mean'/'running_var']``."""
    net = _compiled_network(model)
    if net is not None:
        return {name: net.state[name] for name in net.state}
    found: dict[str, np.ndarray] = {}
    for i, bn_param in enumerate(getattr(model, "bn_params", None) or []):
        for key in ("running_mean", "running_var"):
            value = bn_param.get(key) if isinstance(bn_param, dict) else None
            if isinstance(value, np.ndarray):
                found[f"bn_params[{i}].{key}"] = value
    return found


def _copies(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


def _copy_into(targets: Mapping[str, np.ndarray], values: Mapping[str, np.ndarray]) -> None:
    for name, target in targets.items():
        if name in values:
            target[...] = values[name]


def _resolve_rule(rule: Any) -> tuple[Callable, str | None]:
    """(update function, homework rule name or None for a custom callable)."""
    if isinstance(rule, str):
        if rule not in optim.UPDATE_RULES:
            raise ValueError(f'Invalid update_rule "{rule}" (known: {", ".join(optim.UPDATE_RULES)})')
        return optim.UPDATE_RULES[rule], rule
    if callable(rule):
        name = next((k for k, f in optim.UPDATE_RULES.items() if f is rule), None)
        return rule, name
    raise ValueError(f"Invalid update_rule {rule!r}: give a name or a callable")


def _net_batch(net: CompiledNetwork, X: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """X cast to the network's dtype and single input shape; y as its label declares:
    int64 class indices (N,), or float targets of the network's dtype (N, *shape)."""
    values = list(net.graph.inputs.values())
    X = np.asarray(X)
    if len(values) == 1:
        X = X.reshape((X.shape[0], *values[0].shape))
    Xp = np.ascontiguousarray(X, dtype=net.dtype)
    if y is None:
        return Xp, None
    label = next(iter(net.graph.labels.values()), None)
    if label is not None and label.kind == "float":
        return Xp, check_targets(y, "Solver: y", label.shape, net.dtype)
    return Xp, np.ascontiguousarray(y, dtype=np.int64)


class Solver:
    """Trains a classification model with minibatch gradient descent (see the module docstring).

    After train(): loss_history (per iteration), train_acc_history and
    val_acc_history (per check: after the first iteration, every epoch and
    the last iteration), best_val_acc, best_params and best_state (swapped into
    the model), and skipped_iterations (batches whose loss was not finite).
    """

    def __init__(self, model: Any, data: Mapping[str, np.ndarray], **kwargs: Any) -> None:
        unknown = [k for k in kwargs if k not in _DEFAULTS]
        if unknown:
            raise ValueError("Unrecognized arguments " + ", ".join(f'"{k}"' for k in unknown))
        settings = {**_DEFAULTS, **kwargs}
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        self.update_rule, self.update_rule_name = _resolve_rule(settings["update_rule"])
        self.optim_config: dict[str, Any] = dict(settings["optim_config"] or {})
        self.lr_decay = float(settings["lr_decay"])
        self.batch_size = int(settings["batch_size"])
        self.num_epochs = int(settings["num_epochs"])
        self.num_train_samples = settings["num_train_samples"]
        self.num_val_samples = settings["num_val_samples"]
        self.checkpoint_name = settings["checkpoint_name"]
        self.print_every = max(int(settings["print_every"]), 1)
        self.verbose = bool(settings["verbose"])
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        self._reset()

    def _reset(self) -> None:
        """Book-keeping variables (called by __init__; don't call it yourself)."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params = {k: np.array(v, copy=True) for k, v in self.model.params.items()}
        self.best_state = _copies(_running_statistics(self.model))
        self._have_best = False
        self.skipped_iterations: list[int] = []
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}
        self._order: np.ndarray | None = None
        self._cursor = 0
        self._optimizer: Optimizer | None = None

    # ---- fast path -------------------------------------------------------------------------------

    def _fused_rule(self) -> str | None:
        """The gn.Optimizer rule when the fast path applies, else None."""
        if _compiled_network(self.model) is None or self.update_rule_name is None:
            return None
        allowed = optim.DEFAULTS[self.update_rule_name]
        return optim.FUSED_RULES[self.update_rule_name] if set(self.optim_config) <= set(allowed) else None

    @property
    def fused(self) -> bool:
        """Whether training takes the fused fast path (one flat-buffer update per batch)."""
        return self._fused_rule() is not None

    def _fused_optimizer(self) -> Optimizer:
        net = _compiled_network(self.model)
        if self._optimizer is None or self._optimizer.net is not net:
            hyper = {**optim.DEFAULTS[self.update_rule_name], **self.optim_config}  # type: ignore[index]
            self._optimizer = Optimizer(net, self._fused_rule(), **hyper)  # type: ignore[arg-type]
        return self._optimizer

    def _batch_for_net(self, X: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        prepare = getattr(self.model, "prepare_batch", None)
        if prepare is not None:
            return prepare(X, y)
        return _net_batch(_compiled_network(self.model), X, y)  # type: ignore[arg-type]

    # ---- training --------------------------------------------------------------------------------

    def _next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The next minibatch of the current epoch's permutation (a new permutation when it ends)."""
        num_train = self.X_train.shape[0]
        too_few = self._cursor and num_train - self._cursor < self._smallest_batch()  # dropped, see train()
        if self._order is None or self._cursor >= num_train or too_few:
            self._order, self._cursor = np.random.permutation(num_train), 0
        idx = self._order[self._cursor:self._cursor + self.batch_size]
        self._cursor += self.batch_size
        return self.X_train[idx], self.y_train[idx]

    def _smallest_batch(self) -> int:
        """The fewest examples a training batch may have: 2 for a compiled model with batchnorm."""
        net = _compiled_network(self.model)
        return min(min_batch(net.graph, "train")[0], self.batch_size) if net is not None else 1

    def _step(self) -> None:
        """One gradient update on the next minibatch (called by train()); skipped, leaving the
        model as it was, when the batch's loss is not finite."""
        X_batch, y_batch = self._next_batch()
        if self.fused:
            optimizer = self._fused_optimizer()
            Xb, yb = self._batch_for_net(X_batch, y_batch)
            # the network restores its running statistics itself when the loss is not finite
            loss = optimizer.step_or_skip(Xb, yb)  # updates nothing when the loss is not finite
        else:
            statistics = {} if _compiled_network(self.model) else _running_statistics(self.model)
            saved = _copies(statistics)
            loss, grads = self.model.loss(X_batch, y_batch)
            if math.isfinite(loss):
                for p, w in self.model.params.items():
                    next_w, next_config = self.update_rule(w, grads[p], self.optim_configs[p])
                    self.model.params[p] = next_w
                    self.optim_configs[p] = next_config
            else:
                _copy_into(statistics, saved)
        self.loss_history.append(float(loss))
        if not math.isfinite(loss):
            self._skipped(X_batch, y_batch, float(loss))

    def _skipped(self, X_batch: np.ndarray, y_batch: np.ndarray, loss: float) -> None:
        """Record and report a batch skipped for its non-finite loss."""
        iteration = len(self.loss_history)
        self.skipped_iterations.append(iteration)
        where = ""
        net = _compiled_network(self.model)
        if net is not None:
            node = net.first_nonfinite(*self._batch_for_net(X_batch, y_batch))
            where = f"; first non-finite value at node {node}" if node else ""
        warnings.warn(f"Solver: iteration {iteration}: loss is {loss}{where}; batch skipped, "
                      "the model is unchanged", RuntimeWarning, stacklevel=4)

    def _decay_learning_rate(self) -> None:
        for config in self.optim_configs.values():
            if "learning_rate" in config:
                config["learning_rate"] *= self.lr_decay
        if self._optimizer is not None and self.fused:
            self._optimizer.learning_rate *= self.lr_decay

    def _scores(self, X: np.ndarray) -> np.ndarray:
        if isinstance(self.model, CompiledNetwork):
            return self.model.forward(_net_batch(self.model, X, None)[0], output=self.model.graph.outputs[0])
        return self.model.loss(X)

    def check_accuracy(self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None,
                       batch_size: int = 100) -> float:
        """Fraction of examples of X (N, ...) whose argmax score equals y (N,).

        For a graphnet network trained for a binary task (sigmoid BCE) the
        prediction is sigmoid(score) > 0.5; for regression (mse) the score is
        R² of the outputs against y (N, *shape), so that the best validation
        score still picks best_params.
        num_samples: evaluate a random subset of that many examples (without
        replacement). Runs in batches of batch_size, the last one short.
        """
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = np.random.choice(N, num_samples, replace=False)
            X, y, N = X[mask], y[mask], num_samples
        if N == 0:
            return 0.0
        net = _compiled_network(self.model)
        task = task_of(net.graph) if net is not None else None
        if task in ("binary", "regression"):
            predicted = np.concatenate([task_predictions(self._scores(X[start:start + batch_size]), task)
                                        for start in range(0, N, batch_size)])
            return score(task, predicted, np.asarray(y))["r2" if task == "regression" else "accuracy"]
        predictions = [np.argmax(self._scores(X[start:start + batch_size]), axis=1)
                       for start in range(0, N, batch_size)]
        return float(np.mean(np.concatenate(predictions) == np.asarray(y)))

    def train(self) -> None:
        """Run num_epochs epochs of optimization, then swap the best parameters into the model."""
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(batches_per_epoch(num_train, self.batch_size, self._smallest_batch()), 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        for t in range(num_iterations):
            self._step()
            self._check_progress(t, iterations_per_epoch)
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {num_iterations}) loss: {self.loss_history[-1]:f}")
            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                self._decay_learning_rate()
            if t == 0 or t == num_iterations - 1 or epoch_end:
                self._check()
        self.model.params = {k: np.array(v, copy=True) for k, v in self.best_params.items()}
        _copy_into(_running_statistics(self.model), self.best_state)

    def _check_progress(self, t: int, iterations_per_epoch: int) -> None:
        """NonFiniteError when the last `iterations_per_epoch` batches were all skipped."""
        skipped = self.skipped_iterations
        if len(skipped) >= iterations_per_epoch and skipped[-iterations_per_epoch] == t + 2 - iterations_per_epoch:
            raise NonFiniteError(
                f"Solver: the loss was not finite for {iterations_per_epoch} iterations in a row "
                f"(iterations {skipped[-iterations_per_epoch]} to {t + 1}, an epoch's worth): training cannot "
                "progress; lower the learning rate or check the data for NaN/inf (the model is as it was "
                "before those iterations)")

    def _check(self) -> None:
        train_acc = self.check_accuracy(self.X_train, self.y_train, num_samples=self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        self._save_checkpoint()
        if self.verbose:
            print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; val_acc: {val_acc:f}")
        if val_acc > self.best_val_acc or not self._have_best:
            self.best_val_acc, self._have_best = val_acc, True
            self.best_params = {k: np.array(v, copy=True) for k, v in self.model.params.items()}
            self.best_state = _copies(_running_statistics(self.model))

    # ---- files -----------------------------------------------------------------------------------

    def record_histories_as_npz(self, filename: str) -> None:
        """Write loss_history, train_acc_history and val_acc_history to an .npz file, atomically."""
        write_npz_atomic(filename, {
            "loss_history": np.asarray(self.loss_history, dtype=np.float64),
            "train_acc_history": np.asarray(self.train_acc_history, dtype=np.float64),
            "val_acc_history": np.asarray(self.val_acc_history, dtype=np.float64),
        })

    def _save_checkpoint(self) -> None:
        if self.checkpoint_name is None:
            return
        rule = self.update_rule_name or getattr(self.update_rule, "__name__", "custom")
        arrays: dict[str, np.ndarray] = {f"params/{k}": np.asarray(v) for k, v in self.model.params.items()}
        arrays.update({
            "update_rule": np.asarray(rule),
            "optim_config": np.asarray(json.dumps(_jsonable(self.optim_config))),
            "lr_decay": np.asarray(self.lr_decay),
            "batch_size": np.asarray(self.batch_size),
            "num_train_samples": np.asarray(-1 if self.num_train_samples is None else self.num_train_samples),
            "num_val_samples": np.asarray(-1 if self.num_val_samples is None else self.num_val_samples),
            "epoch": np.asarray(self.epoch),
            "loss_history": np.asarray(self.loss_history, dtype=np.float64),
            "train_acc_history": np.asarray(self.train_acc_history, dtype=np.float64),
            "val_acc_history": np.asarray(self.val_acc_history, dtype=np.float64),
        })
        filename = f"{self.checkpoint_name}_epoch_{self.epoch}.npz"
        if self.verbose:
            print(f'Saving checkpoint to "{filename}"')
        write_npz_atomic(filename, arrays)


def _jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in config.items()}


def load_solver_checkpoint(filename: str) -> dict[str, Any]:
    """Read a Solver checkpoint (no pickle): {'params': {name: array}, 'update_rule', 'optim_config',
    'lr_decay', 'batch_size', 'num_train_samples', 'num_val_samples', 'epoch', and the histories as lists}."""
    with open(filename, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
        result: dict[str, Any] = {"params": {}}
        for key in npz.files:
            value = npz[key]
            if key.startswith("params/"):
                result["params"][key.removeprefix("params/")] = value
            elif key.endswith("_history"):
                result[key] = value.tolist()
            elif key == "optim_config":
                result[key] = json.loads(str(value))
            elif key == "update_rule":
                result[key] = str(value)
            elif key in ("num_train_samples", "num_val_samples"):
                result[key] = None if int(value) < 0 else int(value)
            else:
                result[key] = value.item()
    return result
