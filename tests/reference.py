"""A plain NumPy interpreter of a NetworkSpec: every op's math written out
directly from its definition, with no planning, no fusion, no in-place tricks
and no graphnet kernel. The tests compare the compiled network against it.

    values, loss, state = run_reference(spec, params, state, inputs, labels,
                                        mode="train", rng=copy_of_dropout_rng)

- `params` / `state`: dicts of arrays by full name (`fc1.W`, `bn1.running_mean`).
- `mode="eval"`: dropout is the identity, batchnorm uses the running stats.
- `mode="train"`: batchnorm uses the batch statistics (biased variance) and
  returns updated running stats; dropout draws its uniforms from `rng` in
  topological order, `rng.random((n, *shape))`, exactly as the compiled plan
  does (one draw per dropout node with rate > 0 that the plan computes).
- Only the ancestors of the outputs (and of the loss when labels are given)
  are computed, as the compiler prunes the others. A train-mode run with labels
  is a training step: it computes the ancestors of the loss and of the
  batchnorms that feed an output, as a train plan does.
- The loss includes the l2 term 0.5 * l2 * sum(W**2) over affine weights.

Test modules load it by path (pytest runs with --import-mode=importlib, and
`tests/` is not a package): see `_helper()` at the top of each test module.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["ACTIVATIONS", "run_reference", "reference_loss", "numeric_gradient", "random_batch"]


# ---- activations, from their definitions -------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-x)), written so that neither branch overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _activation(name: str | None, x: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    if name in (None, "identity"):
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "leaky_relu":
        return np.where(x > 0, x, alpha * x)
    if name == "sigmoid":
        return _sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    raise KeyError(name)


ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ---- losses, each a mean ------------------------------------------------------------------


def _loss(op: str, scores: np.ndarray, labels: np.ndarray) -> float:
    n = scores.shape[0]
    if op == "softmax_cross_entropy":
        z = scores - scores.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(n), labels].mean())
    if op == "cross_entropy":
        picked = np.maximum(scores[np.arange(n), labels], np.finfo(scores.dtype).tiny)
        return float(-np.log(picked).mean())
    if op == "svm":
        correct = scores[np.arange(n), labels][:, None]
        margins = np.maximum(0.0, scores - correct + 1.0)
        margins[np.arange(n), labels] = 0.0
        return float(margins.sum(axis=1).mean())
    if op == "mse":
        return float(((scores - labels.reshape(scores.shape)) ** 2).mean())
    if op == "sigmoid_binary_cross_entropy":
        t = labels.reshape(scores.shape)
        # -(t log s + (1 - t) log(1 - s)) with s = sigmoid(x), in the stable form
        terms = np.maximum(scores, 0) - scores * t + np.log1p(np.exp(-np.abs(scores)))
        return float(terms.mean())
    raise KeyError(op)


# ---- the interpreter ----------------------------------------------------------------------


def _ancestors(spec, targets: list[str]) -> set[str]:
    by_id = {node.id: node for node in spec.nodes}
    needed: set[str] = set()
    stack = list(targets)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        if name in by_id:
            stack.extend(by_id[name].inputs)
    return needed


def run_reference(
    spec,
    params: Mapping[str, np.ndarray],
    state: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray] | None = None,
    *,
    mode: str = "eval",
    rng: np.random.Generator | None = None,
) -> tuple[dict[str, np.ndarray], float | None, dict[str, np.ndarray]]:
    """(values by name, loss or None, state after the run) of `spec` on one batch."""
    state = {name: np.array(value, dtype=np.float64) for name, value in state.items()}
    values: dict[str, np.ndarray] = {}
    n = next(iter(inputs.values())).shape[0]
    for name in spec.inputs:
        values[name] = np.asarray(inputs[name], dtype=np.float64).reshape((n, *spec.value(name).shape))
    if labels is not None:
        for name in spec.labels:
            label = np.asarray(labels[name])
            values[name] = label if spec.value(name).kind == "classes" else label.astype(np.float64)
    if mode == "train" and labels is not None and spec.loss:
        # a training step computes the loss, plus the batchnorms feeding an output (their
        # running statistics learn); an output's other nodes (a dropout there) are skipped
        feeding = _ancestors(spec, list(spec.outputs))
        targets = [spec.loss] + [node.id for node in spec.nodes if node.op == "batchnorm" and node.id in feeding]
    else:
        targets = list(spec.outputs) + ([spec.loss] if labels is not None and spec.loss else [])
    needed = _ancestors(spec, targets)
    loss: float | None = None
    for node in spec.topological_nodes():
        if node.id not in needed:
            continue
        xs = [values[ref] for ref in node.inputs]
        x = xs[0]
        p = lambda local: np.asarray(params[f"{node.id}.{local}"], dtype=np.float64)  # noqa: E731
        op = node.op
        if op == "affine":
            z = x.reshape(n, -1) @ p("W")
            if node.bias:
                z = z + p("b")
            y = _activation(node.activation, z, node.alpha)
        elif op in ("relu", "sigmoid", "tanh", "identity"):
            y = _activation(op, x)
        elif op == "leaky_relu":
            y = _activation(op, x, node.alpha)
        elif op == "softmax":
            y = _softmax(x)
        elif op == "batchnorm":
            mean_name, var_name = f"{node.id}.running_mean", f"{node.id}.running_var"
            if mode == "train":
                mu = x.mean(axis=0)
                var = ((x - mu) ** 2).mean(axis=0)  # biased, as the homework
                state[mean_name] = node.momentum * state[mean_name] + (1 - node.momentum) * mu
                state[var_name] = node.momentum * state[var_name] + (1 - node.momentum) * var
            else:
                mu, var = state[mean_name], state[var_name]
            y = p("gamma") * (x - mu) / np.sqrt(var + node.eps) + p("beta")
        elif op == "layernorm":
            mu = x.mean(axis=1, keepdims=True)
            var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
            y = p("gamma") * (x - mu) / np.sqrt(var + node.eps) + p("beta")
        elif op == "dropout":
            if mode == "train" and node.rate > 0:
                if rng is None:
                    raise ValueError("train-mode dropout needs the generator the network draws from")
                uniforms = rng.random(x.shape)
                mask = (uniforms >= node.rate) / (1.0 - node.rate)
                y = x * mask
            else:
                y = x
        elif op == "flatten":
            y = x.reshape(n, -1)
        elif op == "add":
            y = sum(xs[1:], xs[0].copy())
        elif op == "concat":
            y = np.concatenate(xs, axis=1)
        elif op in ("softmax_cross_entropy", "cross_entropy", "svm", "mse", "sigmoid_binary_cross_entropy"):
            loss = _loss(op, x, xs[1])
            continue
        else:  # a new op: teach the reference its math
            raise NotImplementedError(f"reference interpreter: no definition for op '{op}'")
        values[node.id] = y
    if loss is not None and spec.l2:
        loss += 0.5 * spec.l2 * sum(
            float((np.asarray(params[f"{node.id}.W"], dtype=np.float64) ** 2).sum())
            for node in spec.nodes if node.op == "affine")
    return values, loss, state


def reference_loss(spec, params, state, inputs, labels, *, mode: str = "train",
                   rng_state: Any = None) -> float:
    """The loss alone; `rng_state` (a bit_generator.state) replays the dropout draws."""
    rng = None
    if rng_state is not None:
        rng = np.random.default_rng()
        rng.bit_generator.state = rng_state
    _, loss, _ = run_reference(spec, params, state, inputs, labels, mode=mode, rng=rng)
    assert loss is not None
    return loss


def numeric_gradient(f, params: dict[str, np.ndarray], name: str, h: float = 1e-6) -> np.ndarray:
    """Central differences of f(params) with respect to every entry of params[name] (float64)."""
    base = np.array(params[name], dtype=np.float64)
    grad = np.zeros_like(base)
    work = dict(params)
    for index in np.ndindex(base.shape):
        for sign in (1, -1):
            bumped = base.copy()
            bumped[index] += sign * h
            work[name] = bumped
            grad[index] += sign * f(work)
        grad[index] /= 2 * h
    return grad


def random_batch(spec, n: int, seed: int = 0, dtype: Any = np.float64):
    """(inputs, labels) for `spec`: standard normal inputs, labels of every label kind."""
    rng = np.random.default_rng(seed)
    inputs = {name: rng.standard_normal((n, *value.shape)).astype(dtype) for name, value in spec.inputs.items()}
    labels = {}
    for name in spec.labels:
        value = spec.value(name)
        if value.kind == "classes":
            labels[name] = rng.integers(0, value.classes, n).astype(np.int64)
        else:
            labels[name] = rng.uniform(0.0, 1.0, (n, *value.shape)).astype(dtype)
    return inputs, labels
