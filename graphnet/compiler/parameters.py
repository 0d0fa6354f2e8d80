"""Parameters, their gradients and persistent state, each in ONE flat buffer.

Named arrays (`"fc1.W"`) are views into the flat buffers, so an optimizer
updates every parameter with one fused kernel call, and a checkpoint is three
arrays. The trainable parameters come first, and among them the weights counted
by the l2 term, each group one contiguous segment: the penalty is one kernel
call over `[:regularized_size]`, an optimizer's state covers `[:trainable_size]`
only, and the frozen parameters (a node's `"trainable": false`, a run's
`"freeze"`) sit after them, where no update reaches.
"""
from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass

import numpy as np

from ..ops.initializers import initialize
from .graph import Graph


@dataclass(frozen=True)
class Slot:
    """Where a named array lives in its flat buffer."""

    start: int
    shape: tuple[int, ...]

    @property
    def stop(self) -> int:
        return self.start + int(np.prod(self.shape, dtype=np.int64))


def _layout(items: list[tuple[str, tuple[int, ...]]]) -> tuple[dict[str, Slot], int]:
    slots, start = {}, 0
    for name, shape in items:
        slots[name] = Slot(start, shape)
        start = slots[name].stop
    return slots, start


class ParameterStore:
    """The flat `values`, `grads` and `state` buffers of one network, with named views."""

    def __init__(self, graph: Graph, dtype: np.dtype, frozen: frozenset[str] = frozenset()):
        self.dtype = np.dtype(dtype)
        self.frozen = frozenset(frozen)
        # stable: the trainable regularized weights first, then the other trainable parameters, then the frozen
        params = sorted(graph.params, key=lambda p: (p.name in self.frozen, not p.decl.regularized))
        self.decls = {p.name: p.decl for p in params}
        # drawn in the same order whatever is frozen, so freezing changes no initial value
        self.init_order = [p.name for p in sorted(graph.params, key=lambda p: not p.decl.regularized)]
        self.slots, total = _layout([(p.name, p.shape) for p in params])
        self.regularized_size = sum(p.size for p in params if p.decl.regularized and p.name not in self.frozen)
        self.trainable_size = sum(p.size for p in params if p.name not in self.frozen)
        self.values = np.zeros(total, self.dtype)
        # Counts the changes the inference plans' packed weight copies must see (see touch).
        self.version = np.zeros(1, np.int64)
        self.shared: list[weakref.ref] = []  # the live views `user_view` handed out (weak references)
        self.grads = np.zeros(total, self.dtype)
        self.state_decls = {s.name: s.decl for s in graph.state}
        self.state_slots, state_total = _layout([(s.name, s.shape) for s in graph.state])
        self.state = np.zeros(state_total, self.dtype)
        self.reset_state()

    @property
    def size(self) -> int:
        return self.values.size

    def names(self) -> list[str]:
        return list(self.slots)

    def trainable_names(self) -> list[str]:
        """The parameters training updates, in buffer order (all but the frozen)."""
        return [name for name in self.slots if name not in self.frozen]

    def trainable(self) -> tuple[np.ndarray, np.ndarray]:
        """The trainable parameters and their gradients, as two flat views `[:trainable_size]`."""
        return self.values[: self.trainable_size], self.grads[: self.trainable_size]

    def view(self, name: str) -> np.ndarray:
        """The live view of parameter `name`; counts as a change (the caller may write to it)."""
        self.touch()
        slot = self.slots[name]
        return self.values[slot.start:slot.stop].reshape(slot.shape)

    def user_view(self, name: str) -> np.ndarray:
        """`view(name)` handed to a user (`net.params`): a write through it may come at any
        time, so while it lives eval plans count the parameters as changed before each run
        (`touch_if_shared`)."""
        array = self.view(name)
        if len(self.shared) >= 64:  # views used and dropped at once: forget the dead ones
            self.shared[:] = [ref for ref in self.shared if ref() is not None]
        self.shared.append(weakref.ref(array))
        return array

    def touch_if_shared(self) -> None:
        """`touch()` when a view a user was handed is still alive: it may have been written since."""
        alive = [ref for ref in self.shared if ref() is not None]
        self.shared[:] = alive
        if alive:
            self.touch()

    def touch(self) -> None:
        """Record that the parameter values may have changed: eval plans that keep a packed copy
        of a weight (graphnet.ops.affine) re-pack it before their next use. Every writer of
        `values` calls this: views handed out, training plans, optimizers, broadcasts."""
        self.version[0] += 1

    def grad_view(self, name: str) -> np.ndarray:
        slot = self.slots[name]
        return self.grads[slot.start:slot.stop].reshape(slot.shape)

    def state_view(self, name: str) -> np.ndarray:
        slot = self.state_slots[name]
        return self.state[slot.start:slot.stop].reshape(slot.shape)

    def segments(self, exclude: frozenset[str] | set[str] = frozenset()) -> list[slice]:
        """The flat buffer as the fewest contiguous slices that cover every parameter not in `exclude`."""
        result: list[slice] = []
        for name, slot in self.slots.items():
            if name in exclude or slot.start == slot.stop:
                continue
            if result and result[-1].stop == slot.start:
                result[-1] = slice(result[-1].start, slot.stop)
            else:
                result.append(slice(slot.start, slot.stop))
        return result

    def span(self, name: str) -> slice:
        """Where the span `name` ("first..last" of adjacent parameters, or one name, see
        `span_name`) lives in the flat buffers."""
        first, _, last = name.partition("..")
        return slice(self.slots[first].start, self.slots[last or first].stop)

    def regularized(self) -> tuple[np.ndarray, np.ndarray]:
        """The l2-penalized weights (the trainable affine weights) and their gradients, as two flat views."""
        return self.values[: self.regularized_size], self.grads[: self.regularized_size]

    def initialize(self, rng: np.random.Generator) -> None:
        """Draw every parameter from its initializer: the l2-penalized weights first, then the
        others, each in declaration order (the same order whichever parameters are frozen)."""
        for name in self.init_order:
            initialize(self.view(name), self.decls[name], rng)

    def reset_state(self) -> None:
        """Every state array back to its declared start (`values`, else `fill`)."""
        for name, decl in self.state_decls.items():
            if decl.values is not None:
                self.state_view(name)[...] = np.reshape(decl.values, decl.shape)
            else:
                self.state_view(name).fill(decl.fill)


def span_name(names: list[str]) -> str:
    """The name of a span of adjacent parameters (`names`, in buffer order): "first..last",
    or the name itself for one parameter (see ParameterStore.span)."""
    return names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"


class ArrayView(MutableMapping[str, np.ndarray]):
    """A dict-like window on a flat buffer: reading gives a live view; assigning copies in.

    The set of names is fixed: assigning an unknown name or a wrong shape is an
    error (a silent reshape or a new key would be lost at the next step).
    """

    def __init__(self, names: list[str], view, what: str):
        self._names, self._view, self._what = list(names), view, what

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(f"no {self._what} named '{name}' (have: {', '.join(self._names)})")
        return self._view(name)

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        target = self[name]
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"{self._what} '{name}' has shape {target.shape}, got {value.shape}")
        np.copyto(target, value, casting="same_kind")

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"{self._what}s of a compiled network cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        shapes = ", ".join(f"'{name}': {self._view(name).shape}" for name in self._names)
        return f"{{{shapes}}}"

    def update_from(self, values: Mapping[str, np.ndarray]) -> None:
        """Copy every entry of `values` in (all names must exist)."""
        for name, value in values.items():
            self[name] = value
