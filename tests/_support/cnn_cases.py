"""Random CNN specs (conv2d, max/avg pooling, global average pooling, batchnorm on images, relu/tanh,
add, concat along channels, flatten, affine) with odd sizes, strides and paddings, and the
same networks evaluated by PyTorch autograd in float64.

`build_cnn(pick)` draws one network through `pick` (hypothesis draws in `cnn_specs()`, a
seeded NumPy generator in `seeded_pick(seed)` for tests/fixtures/cnn_torch/make_fixtures.py).
`torch_run(doc, params, state, X, y)` is an independent interpreter of such a spec in
PyTorch (no graphnet code): eval-mode outputs, the train-mode loss (mean softmax cross
entropy + l2), every parameter's gradient and the running statistics after the step.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np
from hypothesis import strategies as st

from graphnet.ops.images import window_of

BATCH = 4
CLASSES = 3


class Pick(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...
    def choice(self, options: list[Any]) -> Any: ...


class HypothesisPick:
    def __init__(self, draw: Callable[..., Any]):
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def choice(self, options: list[Any]) -> Any:
        return self.draw(st.sampled_from(options))


class SeededPick:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def integer(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def choice(self, options: list[Any]) -> Any:
        return options[int(self.rng.integers(len(options)))]


def _size(pick: Pick, top: int) -> int | list[int]:
    return pick.choice([pick.integer(1, top), [pick.integer(1, top), pick.integer(1, top)]])


def _conv(pick: Pick, node_id: str, src: str, shape: tuple[int, int, int]) -> dict[str, Any] | None:
    _, h, w = shape
    kernel = _size(pick, 3)
    padding = pick.choice(["valid", "same", pick.integer(0, 2), [pick.integer(0, 1), pick.integer(0, 2)]])
    node = {"id": node_id, "op": "conv2d", "inputs": [src], "filters": pick.integer(1, 4), "kernel": kernel,
            "stride": _size(pick, 2), "padding": padding, "bias": pick.choice([True, False]),
            "activation": pick.choice([None, "relu", "tanh"])}
    if node["activation"] is None:
        del node["activation"]
    return node if _fits(node, padding, h, w) else None


def _pool(pick: Pick, node_id: str, src: str, shape: tuple[int, int, int]) -> dict[str, Any] | None:
    _, h, w = shape
    kh, kw = pick.integer(1, 3), pick.integer(1, 3)
    padding = [pick.integer(0, kh // 2), pick.integer(0, kw // 2)]
    node = {"id": node_id, "op": pick.choice(["max_pool2d", "avg_pool2d"]), "inputs": [src], "kernel": [kh, kw],
            "stride": _size(pick, 2), "padding": padding}
    return node if _fits(node, padding, h, w) else None


def _fits(node: dict[str, Any], padding: Any, h: int, w: int) -> bool:
    class Fields:
        kernel, stride = node["kernel"], node["stride"]
    g = window_of(Fields, padding, h, w)
    return g.kh <= h + g.top + g.bottom and g.kw <= w + g.left + g.right


def _out_shape(node: dict[str, Any], shape: tuple[int, int, int]) -> tuple[int, int, int]:
    class Fields:
        kernel, stride = node["kernel"], node["stride"]
    g = window_of(Fields, node["padding"], shape[1], shape[2])
    channels = node["filters"] if node["op"] == "conv2d" else shape[0]
    return (channels, *g.output(shape[1], shape[2]))


def build_cnn(pick: Pick) -> dict[str, Any]:
    """A network document: x [C, H, W] -> 1..5 image blocks -> flatten or global pooling -> head -> loss."""
    shape = (pick.integer(1, 3), pick.integer(3, 8), pick.integer(3, 8))
    values = {"x": shape}
    nodes: list[dict[str, Any]] = []
    src = "x"
    for k in range(pick.integer(1, 5)):  # a chain (every node reaches the loss); add and concat join earlier values
        node_id = f"n{k}"
        kind = pick.choice(["conv", "conv", "pool", "batchnorm", "activation", "add", "concat"])
        node: dict[str, Any] | None = None
        if kind == "conv":
            node = _conv(pick, node_id, src, values[src])
        elif kind == "pool":
            node = _pool(pick, node_id, src, values[src])
        elif kind == "batchnorm":
            node = {"id": node_id, "op": "batchnorm", "inputs": [src], "momentum": pick.choice([0.9, 0.5])}
        elif kind == "activation":
            node = {"id": node_id, "op": pick.choice(["relu", "tanh"]), "inputs": [src]}
        else:
            same = sorted(v for v in values if values[v] == values[src]) if kind == "add" else \
                sorted(v for v in values if values[v][1:] == values[src][1:])
            node = {"id": node_id, "op": kind, "inputs": [src, pick.choice(same)]}
        if node is None:
            continue
        nodes.append(node)
        src = node_id
        if node["op"] in ("conv2d", "max_pool2d", "avg_pool2d"):
            values[node_id] = _out_shape(node, values[node["inputs"][0]])
        elif node["op"] == "concat":
            values[node_id] = (sum(values[i][0] for i in node["inputs"]), *values[node["inputs"][0]][1:])
        else:
            values[node_id] = values[node["inputs"][0]]
    last = nodes[-1]["id"] if nodes else "x"
    if pick.choice([True, False]):
        nodes.append({"id": "pooled", "op": "global_avg_pool", "inputs": [last]})
    else:
        nodes.append({"id": "pooled", "op": "flatten", "inputs": [last]})
    nodes.append({"id": "head", "op": "affine", "inputs": ["pooled"], "units": CLASSES})
    nodes.append({"id": "loss", "op": "softmax_cross_entropy", "inputs": ["head", "y"]})
    return {"name": "cnn", "inputs": {"x": {"shape": list(shape)}}, "labels": {"y": {"classes": CLASSES}},
            "nodes": nodes, "outputs": ["head"], "loss": "loss", "l2": pick.choice([0.0, 0.01])}


@st.composite
def cnn_specs(draw: Callable[..., Any]) -> dict[str, Any]:
    return build_cnn(HypothesisPick(draw))


# ---- PyTorch, float64 -------------------------------------------------------------------------


def torch_run(doc: dict[str, Any], params: dict[str, np.ndarray], state: dict[str, np.ndarray],
              X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """{"outputs": eval-mode head (N, classes), "loss": train-mode loss, "grads": {name: array},
    "state": running statistics after the train-mode pass}."""
    import torch
    import torch.nn.functional as F

    def window(node: dict[str, Any], shape: tuple[int, ...]):  # noqa: ANN202
        class Fields:
            kernel, stride = node["kernel"], node["stride"]
        return window_of(Fields, node.get("padding", 0), shape[2], shape[3])

    fixes: list[tuple[Any, Any]] = []  # (running variance, what to take off it once backward ran)

    def run(train: bool) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=train) for k, v in params.items()}
        s = {k: torch.tensor(v, dtype=torch.float64) for k, v in state.items()}
        vals: dict[str, Any] = {"x": torch.tensor(X, dtype=torch.float64), "y": torch.tensor(y)}
        for node in doc["nodes"]:
            op, ins = node["op"], [vals[i] for i in node["inputs"]]
            a = ins[0] if ins else None
            if op == "conv2d":
                g = window(node, a.shape)
                z = F.conv2d(F.pad(a, (g.left, g.right, g.top, g.bottom)), p[f"{node['id']}.W"],
                             p.get(f"{node['id']}.b"), stride=(g.sh, g.sw))
                out = {"relu": torch.relu, "tanh": torch.tanh}.get(node.get("activation"), lambda t: t)(z)
            elif op in ("max_pool2d", "avg_pool2d"):
                g = window(node, a.shape)
                out = F.max_pool2d(a, (g.kh, g.kw), (g.sh, g.sw), (g.top, g.left)) if op == "max_pool2d" else \
                    F.avg_pool2d(a, (g.kh, g.kw), (g.sh, g.sw), (g.top, g.left), count_include_pad=True)
            elif op == "batchnorm":
                mean, var = s[f"{node['id']}.running_mean"], s[f"{node['id']}.running_var"]
                out = F.batch_norm(a, mean, var, p[f"{node['id']}.gamma"], p[f"{node['id']}.beta"],
                                   training=train, momentum=1 - node["momentum"], eps=1e-5)
                if train:  # torch keeps the unbiased batch variance, graphnet (as the homework) the biased one
                    batch = a.detach()
                    fixes.append((var, (1 - node["momentum"]) * (batch.var(dim=(0, 2, 3), unbiased=True)
                                                                 - batch.var(dim=(0, 2, 3), unbiased=False))))
            elif op in ("relu", "tanh"):
                out = getattr(torch, op)(a)
            elif op == "add":
                out = ins[0] + ins[1]
            elif op == "concat":
                out = torch.cat(ins, dim=1)
            elif op == "flatten":
                out = a.flatten(1)
            elif op == "global_avg_pool":
                out = a.mean(dim=(2, 3))
            elif op == "affine":
                out = a.flatten(1) @ p[f"{node['id']}.W"] + p[f"{node['id']}.b"]
            elif op == "softmax_cross_entropy":
                out = F.cross_entropy(a, ins[1])
            else:
                raise NotImplementedError(op)
            vals[node["id"]] = out
        return vals, p, s

    evaluated, _, _ = run(train=False)
    trained, p, s = run(train=True)
    loss = trained["loss"]
    l2 = doc.get("l2", 0.0)
    for name, tensor in p.items():
        if name.endswith(".W"):
            loss = loss + 0.5 * l2 * (tensor ** 2).sum()
    loss.backward()
    for var, excess in fixes:
        var -= excess
    return {"outputs": evaluated["head"].detach().numpy(), "loss": float(loss.detach()),
            "grads": {k: v.grad.numpy() for k, v in p.items()}, "state": {k: v.numpy() for k, v in s.items()}}


def case_arrays(doc: dict[str, Any], seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                                                          np.ndarray, np.ndarray]:
    """Parameters and state of the compiled network (graphnet's names and layouts, randomized as
    tests/_support/zoo.randomize does), and a batch (X, y), all from `seed`."""
    import graphnet as gn

    net = gn.compile(gn.parse_network(doc), batch_size=BATCH, dtype="float64", seed=seed)
    rng = np.random.default_rng(seed)
    params = {k: (1.0 if k.endswith(".gamma") else 0.0) + rng.normal(0, 0.6, v.shape) for k, v in net.params.items()}
    state = {k: rng.uniform(0.5, 1.5, v.shape) if k.endswith("var") else rng.normal(0, 0.5, v.shape)
             for k, v in net.state.items()}
    X = rng.standard_normal((BATCH, *doc["inputs"]["x"]["shape"]))
    y = rng.integers(0, CLASSES, BATCH)
    return params, state, X, y
