"""Check a compiled network's gradients against central differences.

The network should be compiled in float64. Dropout masks are replayed (the
dropout generator is rewound before every evaluation), so the loss is a
deterministic function of the parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import CompiledNetwork


@dataclass(frozen=True)
class ParamCheck:
    name: str
    checked: int  # how many entries were compared
    rel_error: float  # ||a - n|| / (||a|| + ||n||) over the checked entries
    worst_index: tuple[int, ...]  # the entry with the largest |a - n|
    analytic: float
    numeric: float


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||) (0 when both are 0).

    Norm-wise rather than entry-wise: an entry whose gradient is ~1e-9 has a
    central difference dominated by rounding (eps * |loss| / h ~ 1e-11), and
    would report a large relative error although nothing is wrong.
    """
    denominator = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    return float(np.linalg.norm(analytic - numeric)) / denominator if denominator > 1e-300 else 0.0


def check_gradients(net: CompiledNetwork, X, y, *, h: float = 1e-5, entries: int | None = 32,
                    seed: int = 0) -> list[ParamCheck]:
    """Compare every parameter's gradient with central differences on the batch (X, y).

    `entries` limits the checked entries per parameter (None: all): half are the
    largest analytic gradients, half a random sample of the rest.
    """
    rng_state = net.dropout_rng.bit_generator.state
    state_before = net.store.state.copy()

    def loss_at() -> float:
        net.dropout_rng.bit_generator.state = rng_state
        net.store.state[...] = state_before
        return net.evaluate_loss(X, y, mode="train")

    net.dropout_rng.bit_generator.state = rng_state
    net.store.state[...] = state_before
    net.train_step(X, y)
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
            index = slot.start + int(k)
            old = net.store.values[index]
            net.store.values[index] = old + h
            plus = loss_at()
            net.store.values[index] = old - h
            minus = loss_at()
            net.store.values[index] = old
            numeric[i] = (plus - minus) / (2 * h)
        analytic = analytic_param[flat]
        worst = int(np.argmax(np.abs(analytic - numeric)))
        results.append(ParamCheck(name, len(flat), relative_error(analytic, numeric),
                                  tuple(int(i) for i in np.unravel_index(int(flat[worst]), slot.shape)),
                                  float(analytic[worst]), float(numeric[worst])))
    net.dropout_rng.bit_generator.state = rng_state
    net.store.state[...] = state_before
    return results
