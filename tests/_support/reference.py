"""A plain NumPy interpreter of a NetworkSpec: it walks the graph calling each
op's reference forward (`OpRecord.reference` in graphnet/ops, the op's math
written out from its definition), with no planning, no fusion, no in-place
tricks and no graphnet kernel. The tests compare the compiled network against it.

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
  is a training step: it computes the ancestors of the loss and of the nodes
  with state (batchnorm) that feed an output, as a train plan does.
- The loss includes the l2 term 0.5 * l2 * sum(W**2) over the parameters the
  ops declare regularized (affine weights).

Test modules load it by path (pytest runs with --import-mode=importlib, and
`tests/` is not a package): see `_helper()` at the top of each test module.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from graphnet.gradient_check import eval_numerical_gradient
from graphnet.ops import OPS, ReferenceContext

__all__ = ["run_reference", "reference_loss", "numeric_gradient", "random_batch"]


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


def _input_values(spec, node) -> list:
    return [spec.value(ref) for ref in node.inputs]


def _has_state(spec, node) -> bool:
    return bool(OPS[node.op].state(node, _input_values(spec, node)))


def _l2_term(spec, params: Mapping[str, np.ndarray]) -> float:
    total = 0.0
    for node in spec.nodes:
        for decl in OPS[node.op].params(node, _input_values(spec, node)):
            if decl.regularized:
                total += float((np.asarray(params[f"{node.id}.{decl.name}"], dtype=np.float64) ** 2).sum())
    return 0.5 * spec.l2 * total


def _local(arrays: Mapping[str, np.ndarray], node_id: str) -> dict[str, np.ndarray]:
    """This node's arrays by local name (`fc1.W` -> `W`), as float64."""
    prefix = f"{node_id}."
    return {name[len(prefix):]: np.asarray(value, dtype=np.float64)
            for name, value in arrays.items() if name.startswith(prefix)}


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
        # a training step computes the loss, plus the stateful nodes feeding an output (their
        # running statistics learn); an output's other nodes (a dropout there) are skipped
        feeding = _ancestors(spec, list(spec.outputs))
        targets = [spec.loss] + [node.id for node in spec.nodes if node.id in feeding and _has_state(spec, node)]
    else:
        targets = list(spec.outputs) + ([spec.loss] if labels is not None and spec.loss else [])
    needed = _ancestors(spec, targets)
    loss: float | None = None
    for node in spec.topological_nodes():
        if node.id not in needed:
            continue
        record = OPS[node.op]
        if record.reference is None:  # a new op: teach its record its math
            raise NotImplementedError(f"op '{node.op}' has no reference forward (OpRecord.reference)")
        node_state = _local(state, node.id)
        ctx = ReferenceContext(mode, _local(params, node.id), node_state, rng)  # type: ignore[arg-type]
        result = record.reference(node, [values[ref] for ref in node.inputs], ctx)
        for local, value in node_state.items():
            state[f"{node.id}.{local}"] = value
        if record.is_loss:
            loss = float(result)
        else:
            values[node.id] = result
    if loss is not None and spec.l2:
        loss += _l2_term(spec, params)
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
    work = dict(params)
    work[name] = np.array(params[name], dtype=np.float64)
    return eval_numerical_gradient(lambda _: f(work), work[name], verbose=False, h=h)


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
