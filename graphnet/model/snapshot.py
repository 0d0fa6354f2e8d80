"""A copy of a network's whole trained state (every parameter and the persistent state:
batchnorm's running statistics), as early stopping keeps its best epoch's.

In a checkpoint it is saved beside the last state as `best/param/<name>` and
`best/state/<name>` arrays (graphnet.model.checkpoint), checked like the others.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PREFIX = "best/"


@dataclass
class Snapshot:
    """The flat parameter values (P,) and state (S,) of a network, copied."""

    values: np.ndarray
    state: np.ndarray

    @classmethod
    def of(cls, net: Any) -> "Snapshot":
        """A copy of `net`'s state now."""
        return cls(net.store.values.copy(), net.store.state.copy())

    def take(self, net: Any) -> None:
        """Copy `net`'s state now into this snapshot (no allocation)."""
        np.copyto(self.values, net.store.values)
        np.copyto(self.state, net.store.state)

    def restore_into(self, net: Any) -> None:
        """Make `net` hold this state (its inference plans see the change)."""
        np.copyto(net.store.values, self.values)
        np.copyto(net.store.state, self.state)
        net.store.touch()

    def arrays(self, net: Any) -> dict[str, np.ndarray]:
        """The checkpoint arrays of this state, named as `net`'s parameters and state arrays."""
        store = net.store
        arrays = {f"{PREFIX}param/{name}": self.values[slot.start:slot.stop].reshape(slot.shape)
                  for name, slot in store.slots.items()}
        arrays.update({f"{PREFIX}state/{name}": self.state[slot.start:slot.stop].reshape(slot.shape)
                       for name, slot in store.state_slots.items()})
        return arrays

    @classmethod
    def from_arrays(cls, net: Any, arrays: dict[str, np.ndarray]) -> "Snapshot | None":
        """The snapshot saved in checkpoint `arrays` for `net` (checked to fit by the loader), or None."""
        if not any(key.startswith(PREFIX) for key in arrays):
            return None
        snapshot = cls(np.empty_like(net.store.values), np.empty_like(net.store.state))
        for key, view in snapshot.arrays(net).items():
            view[...] = arrays[key]
        return snapshot


def served_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The `param/<name>` and `state/<name>` arrays of the state a checkpoint serves: its best
    state when it keeps one, else its last."""
    best = any(key.startswith(PREFIX) for key in arrays)
    return {key.removeprefix(PREFIX): array for key, array in arrays.items()
            if (key.startswith(PREFIX) if best else not key.startswith(PREFIX))
            and key.removeprefix(PREFIX).startswith(("param/", "state/"))}
