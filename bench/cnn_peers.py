"""A graphnet network chain (conv2d, batchnorm, relu, max/avg pooling, global average pooling,
dropout, flatten, affine, softmax cross-entropy) rebuilt in PyTorch and in JAX from graphnet's
parameters, for the benchmarks that compare them (bench/cnn.py, bench/time_to_accuracy.py).

Each node must read the one before it (a chain); anything else, and the l2 term, is refused
with SystemExit naming it. Weights keep graphnet's layouts where the peers share them (conv
W (F, C, kh, kw) as torch's and JAX's OIHW); affine W (in, out) is transposed for torch.Linear.
Batchnorm momentum is converted (torch's is the weight of the new statistic).
"""
from __future__ import annotations

from typing import Any

import numpy as np

import graphnet as gn
from graphnet.ops.images import window_of

MAPPED = ("conv2d", "batchnorm", "relu", "max_pool2d", "avg_pool2d", "global_avg_pool", "dropout", "flatten",
          "affine", "softmax_cross_entropy")


def chain(network: gn.NetworkSpec) -> list[tuple[Any, tuple[int, ...]]]:
    """The nodes in order with their input's per-example shape; SystemExit for what is not mapped."""
    if network.l2:
        raise SystemExit("this benchmark maps networks without l2; the network's l2 term is not mapped")
    nodes, previous = [], next(iter(network.inputs))
    for node in network.topological_nodes():
        if node.op not in MAPPED:
            raise SystemExit(f"this benchmark maps {', '.join(MAPPED)}; op '{node.op}' is not mapped")
        if node.inputs[0] != previous:
            raise SystemExit(f"this benchmark maps a chain of nodes; '{node.id}' reads '{node.inputs[0]}'")
        nodes.append((node, network.value(node.inputs[0]).shape))
        previous = node.id
    return nodes


def torch_model(network: gn.NetworkSpec, initial: dict[str, np.ndarray]) -> Any:
    """The network without its loss as a torch.nn.Sequential holding graphnet's initial weights."""
    nodes = chain(network)
    import torch
    from torch import nn

    modules: list[Any] = []
    with torch.no_grad():
        for node, shape in nodes:
            weight = initial.get(f"{node.id}.W")
            if node.op == "conv2d":
                g = window_of(node, node.padding, shape[1], shape[2])
                if (g.top, g.left) != (g.bottom, g.right):
                    modules.append(nn.ZeroPad2d((g.left, g.right, g.top, g.bottom)))
                    pads = (0, 0)
                else:
                    pads = (g.top, g.left)
                conv = nn.Conv2d(shape[0], node.filters, (g.kh, g.kw), (g.sh, g.sw), pads, bias=node.bias)
                conv.weight.copy_(torch.from_numpy(weight))
                if node.bias:
                    conv.bias.copy_(torch.from_numpy(initial[f"{node.id}.b"]))
                modules.append(conv)
            elif node.op == "affine":
                if len(shape) > 1:
                    modules.append(nn.Flatten())
                linear = nn.Linear(weight.shape[0], weight.shape[1], bias=node.bias)
                linear.weight.copy_(torch.from_numpy(weight.T.copy()))
                if node.bias:
                    linear.bias.copy_(torch.from_numpy(initial[f"{node.id}.b"]))
                modules.append(linear)
            elif node.op == "batchnorm":
                norm = (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(shape[0], eps=node.eps,
                                                                               momentum=1 - node.momentum)
                norm.weight.copy_(torch.from_numpy(initial[f"{node.id}.gamma"]))
                norm.bias.copy_(torch.from_numpy(initial[f"{node.id}.beta"]))
                modules.append(norm)
            elif node.op in ("max_pool2d", "avg_pool2d"):
                g = window_of(node, node.padding, shape[1], shape[2])
                pool = nn.MaxPool2d if node.op == "max_pool2d" else nn.AvgPool2d
                modules.append(pool((g.kh, g.kw), (g.sh, g.sw), (g.top, g.left)))
            elif node.op == "global_avg_pool":
                modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            elif node.op == "dropout":
                modules.append(nn.Dropout(node.rate))
            elif node.op == "flatten":
                modules.append(nn.Flatten())
            if getattr(node, "activation", None) == "relu" or node.op == "relu":
                modules.append(nn.ReLU())
            elif getattr(node, "activation", None) not in (None, "identity"):
                raise SystemExit(f"this benchmark maps the relu epilogue only; '{node.id}' has {node.activation}")
    return nn.Sequential(*modules)


def jax_model(network: gn.NetworkSpec, initial: dict[str, np.ndarray]) -> tuple[dict, dict, Any]:
    """(params, state, forward): forward(params, state, X, key, train) -> (scores, new state), pure
    and jittable; state holds the batchnorm running statistics."""
    nodes = chain(network)
    import jax
    import jax.numpy as jnp

    params = {name: jnp.asarray(value) for name, value in initial.items()}
    state: dict[str, Any] = {}
    for node, shape in nodes:
        if node.op == "batchnorm":
            state[f"{node.id}.running_mean"] = jnp.zeros(shape[0], jnp.float32)
            state[f"{node.id}.running_var"] = jnp.ones(shape[0], jnp.float32)

    def forward(params: dict, state: dict, X: Any, key: Any, train: bool) -> tuple[Any, dict]:
        h, new_state = X, dict(state)
        for node, shape in nodes:
            if node.op == "conv2d":
                g = window_of(node, node.padding, shape[1], shape[2])
                h = jax.lax.conv_general_dilated(h, params[f"{node.id}.W"], (g.sh, g.sw),
                                                 [(g.top, g.bottom), (g.left, g.right)],
                                                 dimension_numbers=("NCHW", "OIHW", "NCHW"))
                if node.bias:
                    h = h + params[f"{node.id}.b"][None, :, None, None]
            elif node.op == "affine":
                h = h.reshape(h.shape[0], -1) @ params[f"{node.id}.W"]
                if node.bias:
                    h = h + params[f"{node.id}.b"]
            elif node.op == "batchnorm":
                axes = (0, 2, 3) if len(shape) == 3 else (0,)
                along = (slice(None), None, None) if len(shape) == 3 else (slice(None),)
                mean_key, var_key = f"{node.id}.running_mean", f"{node.id}.running_var"
                if train:
                    mean, var = h.mean(axis=axes), h.var(axis=axes)
                    new_state[mean_key] = node.momentum * state[mean_key] + (1 - node.momentum) * mean
                    new_state[var_key] = node.momentum * state[var_key] + (1 - node.momentum) * var
                else:
                    mean, var = state[mean_key], state[var_key]
                h = (h - mean[along]) * jax.lax.rsqrt(var[along] + node.eps)
                h = h * params[f"{node.id}.gamma"][along] + params[f"{node.id}.beta"][along]
            elif node.op in ("max_pool2d", "avg_pool2d"):
                g = window_of(node, node.padding, shape[1], shape[2])
                window, strides = (1, 1, g.kh, g.kw), (1, 1, g.sh, g.sw)
                pads = ((0, 0), (0, 0), (g.top, g.bottom), (g.left, g.right))
                if node.op == "max_pool2d":
                    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, window, strides, pads)
                else:
                    h = jax.lax.reduce_window(h, 0.0, jax.lax.add, window, strides, pads) / (g.kh * g.kw)
            elif node.op == "global_avg_pool":
                h = h.mean(axis=(2, 3))
            elif node.op == "flatten":
                h = h.reshape(h.shape[0], -1)
            elif node.op == "dropout" and train and node.rate:
                key, sub = jax.random.split(key)
                keep = jax.random.uniform(sub, h.shape) >= node.rate
                h = jnp.where(keep, h / (1.0 - node.rate), 0.0)
            if getattr(node, "activation", None) == "relu" or node.op == "relu":
                h = jax.nn.relu(h)
        return h, new_state

    return params, state, forward


def jax_loss(forward: Any) -> Any:
    """loss(params, state, X, y, key) -> (mean softmax cross-entropy, new state), for jax.value_and_grad(has_aux)."""
    import jax
    import jax.numpy as jnp

    def loss(params: dict, state: dict, X: Any, y: Any, key: Any) -> tuple[Any, dict]:
        scores, new_state = forward(params, state, X, key, True)
        logp = jax.nn.log_softmax(scores)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1)), new_state

    return loss
