"""Shared test helpers: the zoo specs, and networks moved away from their initial values."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import graphnet as gn

from tests._support.paths import SPECS

ZOO = sorted(SPECS.glob("*_*.json"))


def zoo_network(path: Path | str) -> gn.NetworkSpec:
    """The network of a zoo file (run files carry it under "network")."""
    spec = gn.load(path)
    return spec.network if isinstance(spec, gn.RunSpec) else spec


def randomize(net: gn.CompiledNetwork, seed: int = 1, scale: float = 0.6) -> None:
    """Parameters and running stats away from their initial values (zero biases put
    relu exactly on its kink; gamma = 1, beta = 0 would hide mistakes); a loss's class
    weights stay as declared."""
    rng = np.random.default_rng(seed)
    for name in net.params:
        shift = 1.0 if name.endswith(".gamma") else 0.0
        net.params[name] = shift + rng.normal(0, scale, net.params[name].shape)
    for name in net.state:
        if name.endswith(".class_weight"):  # part of the loss's definition, not a statistic
            continue
        net.state[name] = rng.uniform(0.5, 1.5, net.state[name].shape) if name.endswith("var") \
            else rng.normal(0, 0.5, net.state[name].shape)
