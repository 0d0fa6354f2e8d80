"""Check a compiled network's gradients against central differences.

The network should be compiled in float64. Dropout masks are replayed (the
dropout generator is rewound before every evaluation), so the loss is a
deterministic function of the parameters.

A parameter passes when its norm-wise relative error is within `rtol`, or
when every checked entry has |analytic - numeric| <= `atol`. The absolute
test is for gradients that vanish (a bias feeding a batchnorm has a true
gradient of 0): there both sides are rounding noise and their relative
error means nothing. The default `atol` scales with that noise: a
thousand times eps * max(1, |loss|) / h, the rounding error of one central
difference (about 2e-8 for a loss near 1, float64 and h = 1e-5).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..compiler.graph import Graph
from .compiled import CompiledNetwork

NOISE_FACTOR = 1e3  # the default atol, in units of one central difference's rounding error


@dataclass(frozen=True)
class ParamCheck:
    name: str
    checked: int  # how many entries were compared
    rel_error: float  # ||a - n|| / (||a|| + ||n||) over the checked entries
    worst_index: tuple[int, ...]  # the entry with the largest |a - n|
    analytic: float
    numeric: float
    abs_error: float = 0.0  # max |a - n| over the checked entries
    atol: float = 0.0  # the absolute tolerance this check was made with

    def passed(self, rtol: float) -> bool:
        """Relative error within rtol, or every entry within atol (a vanishing gradient)."""
        return self.rel_error <= rtol or self.abs_error <= self.atol


def default_atol(loss: float, h: float, dtype: np.dtype) -> float:
    """NOISE_FACTOR times the rounding error of a central difference, eps * max(1, |loss|) / h."""
    return NOISE_FACTOR * float(np.finfo(dtype).eps) * max(1.0, abs(loss)) / h


def redundant_biases(graph: Graph) -> list[str]:
    """One note per affine bias that only feeds batchnorms: the batch mean they subtract removes
    it, so it changes nothing and its gradient is 0 (the spec should say "bias": false)."""
    notes = []
    for node in graph.nodes:
        spec = node.spec
        if node.op != "affine" or not spec.bias or spec.activation not in (None, "identity"):
            continue
        readers = [graph.node(reader) for reader, _ in graph.consumers[node.id]]
        if readers and node.id not in graph.outputs and all(r.op == "batchnorm" for r in readers):
            names = ", ".join(f"'{r.id}'" for r in readers)
            notes.append(f"{node.id}.b: the bias of affine '{node.id}' feeds only batchnorm {names}, which "
                         f"subtracts the batch mean: it has no effect and its gradient is 0 "
                         f"(set \"bias\": false on '{node.id}')")
    return notes


def central_difference(f: Callable[[np.ndarray], Any], x: np.ndarray, ix: tuple[int, ...] | int,
                       h: float = 1e-5) -> Any:
    """(f(x + h e_ix) - f(x - h e_ix)) / 2h, perturbing x in place at index `ix` and restoring it.

    f returns one value (the result is a float) or an array (the result is a float64 array of
    its shape; each value is copied, so f may return a view of a buffer it reuses).
    """
    old = x[ix]
    x[ix] = old + h
    plus = _value(f(x))
    x[ix] = old - h
    minus = _value(f(x))
    x[ix] = old
    return (plus - minus) / (2 * h)


def _value(value: Any) -> Any:
    """A float for a single value, else a float64 copy of the array."""
    array = np.array(value, dtype=np.float64, copy=True)
    return array.item() if array.size == 1 else array


def norm_relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||) (0 when both are 0).

    Norm-wise rather than entry-wise: an entry whose gradient is ~1e-9 has a
    central difference dominated by rounding (eps * |loss| / h ~ 1e-11), and
    would report a large relative error although nothing is wrong.
    """
    denominator = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    return float(np.linalg.norm(analytic - numeric)) / denominator if denominator > 1e-300 else 0.0


def check_gradients(net: CompiledNetwork, X, y, *, h: float = 1e-5, entries: int | None = 32,
                    seed: int = 0, atol: float | None = None) -> list[ParamCheck]:
    """Compare every parameter's gradient with central differences on the batch (X, y).

    `entries` limits the checked entries per parameter (None: all): half are the
    largest analytic gradients, half a random sample of the rest. `atol`: the
    absolute tolerance of each result (default: see `default_atol`). Warns
    (UserWarning) about every redundant bias (see `redundant_biases`).
    """
    for note in redundant_biases(net.graph):
        warnings.warn(note, UserWarning, stacklevel=2)
    rng_state = net.dropout_rng.bit_generator.state
    state_before = net.store.state.copy()

    def loss_at() -> float:
        net.dropout_rng.bit_generator.state = rng_state
        net.store.state[...] = state_before
        return net.evaluate_loss(X, y, mode="train")

    net.dropout_rng.bit_generator.state = rng_state
    net.store.state[...] = state_before
    loss = net.step(X, y)
    if atol is None:
        atol = default_atol(loss, h, net.dtype)
    analytic_all = net.store.grads.copy()
    pick = np.random.default_rng(seed)
    results = []
    for name, slot in net.store.slots.items():
        size = slot.stop - slot.start
        analytic_param = analytic_all[slot.start:slot.stop]
        if entries is None or entries >= size:
            flat = np.arange(size)
        else:
            largest = np.argsort(-np.abs(analytic_param), kind="stable")[: entries // 2]
            rest = np.setdiff1d(np.arange(size), largest)
            flat = np.concatenate([largest, pick.choice(rest, entries - len(largest), replace=False)])
        numeric = np.empty(len(flat))
        for i, k in enumerate(flat):
            numeric[i] = central_difference(lambda _: loss_at(), net.store.values, slot.start + int(k), h)
        analytic = analytic_param[flat]
        differences = np.abs(analytic - numeric)
        worst = int(np.argmax(differences))
        results.append(ParamCheck(name, len(flat), norm_relative_error(analytic, numeric),
                                  tuple(int(i) for i in np.unravel_index(int(flat[worst]), slot.shape)),
                                  float(analytic[worst]), float(numeric[worst]),
                                  float(differences[worst]), atol))
    net.dropout_rng.bit_generator.state = rng_state
    net.store.state[...] = state_before
    return results
