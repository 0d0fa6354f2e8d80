"""The homework's models (CS231n `fc_net.py`), built as specs and compiled.

``TwoLayerNet`` and ``FullyConnectedNet`` keep the homework's constructor
arguments and attributes, but the network is a `NetworkSpec`
(``model.spec``) compiled with `gn.compile` (``model.net``):

- ``model.params`` maps the homework's names (W1, b1, gamma1, beta1, ...,
  WL, bL) to LIVE views of the compiled network's flat parameter buffer:
  changing an array in place (as ``eval_numerical_gradient`` does) changes
  the network; assigning ``model.params[k] = v`` or ``model.params = d``
  copies values in.
- ``model.loss(X)`` returns scores (test mode: dropout off, batchnorm running
  statistics); ``model.loss(X, y)`` returns ``(loss, grads)`` in train mode,
  grads a new dict (later calls do not overwrite it). ``reg`` is the spec's
  ``l2``: loss += 0.5 * reg * sum(W**2) over the weights only.
- X of any float dtype and shape (N, d_1, ..., d_k) is cast to the model's
  dtype and flattened; labels may have any integer dtype.

Architecture: {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) -
affine - softmax, with node ids fc1, bn1 | ln1, relu1, drop1, ..., fcL.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, Sequence

import numpy as np

from ...model.compiled import CompiledNetwork, compile
from ...spec import NetworkSpec
from ...spec.builder import sequential
from .layers import as_labels

__all__ = ["FullyConnectedNet", "TwoLayerNet", "fc_net_spec"]

NORMALIZATIONS = {"batchnorm": ("bn", "batchnorm"), "layernorm": ("ln", "layernorm")}
INITIALIZATIONS = {"random": "normal", "he": "he_normal", "xavier": "xavier_normal", "zero": "zeros"}


def _weight_init(initialization: str, weight_scale: float) -> dict[str, Any]:
    if initialization not in INITIALIZATIONS:
        raise ValueError(f"unknown initialization '{initialization}' (choose one of {', '.join(INITIALIZATIONS)})")
    init = INITIALIZATIONS[initialization]
    if init == "normal":
        if weight_scale < 0:
            raise ValueError(f"weight_scale must be >= 0, got {weight_scale}")
        return {"init": "normal", "std": float(weight_scale)} if weight_scale > 0 else {"init": "zeros"}
    return {"init": init}


def fc_net_spec(hidden_dims: Sequence[int], input_dim: int, num_classes: int, *, dropout: float = 0.0,
                normalization: str | None = None, reg: float = 0.0, weight_scale: float = 1e-2,
                initialization: str = "random", name: str = "fully_connected_net") -> NetworkSpec:
    """The NetworkSpec of a FullyConnectedNet (see the module docstring for the node ids)."""
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be None, 'batchnorm' or 'layernorm', got {normalization!r}")
    init = _weight_init(initialization, weight_scale)
    layers: list[dict[str, Any]] = []
    for i, units in enumerate(hidden_dims, start=1):
        layers.append({"id": f"fc{i}", "op": "affine", "units": int(units), **init})
        if normalization is not None:
            prefix, op = NORMALIZATIONS[normalization]
            layers.append({"id": f"{prefix}{i}", "op": op})
        layers.append({"id": f"relu{i}", "op": "relu"})
        if dropout > 0:
            layers.append({"id": f"drop{i}", "op": "dropout", "rate": float(dropout)})
    layers.append({"id": f"fc{len(hidden_dims) + 1}", "op": "affine", "units": int(num_classes), **init})
    return sequential(layers, input_shape=[int(input_dim)], classes=int(num_classes), l2=float(reg), name=name)


def _param_names(num_layers: int, normalization: str | None) -> dict[str, str]:
    """Homework name -> spec parameter name, in the homework's order."""
    names: dict[str, str] = {}
    for i in range(1, num_layers + 1):
        names[f"W{i}"], names[f"b{i}"] = f"fc{i}.W", f"fc{i}.b"
        if normalization is not None and i < num_layers:
            prefix = NORMALIZATIONS[normalization][0]
            names[f"gamma{i}"], names[f"beta{i}"] = f"{prefix}{i}.gamma", f"{prefix}{i}.beta"
    return names


class ModelParams(MutableMapping[str, np.ndarray]):
    """The homework's `params` dict over a compiled network: live views; assignment copies in."""

    def __init__(self, model: "FullyConnectedNet") -> None:
        self._model = model

    def __getitem__(self, key: str) -> np.ndarray:
        return self._model.net.params[self._model.param_names[key]]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        if key not in self._model.param_names:
            raise KeyError(f"no parameter '{key}' (have: {', '.join(self._model.param_names)})")
        self._model.net.params[self._model.param_names[key]] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("parameters of a compiled model cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self._model.param_names)

    def __len__(self) -> int:
        return len(self._model.param_names)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"'{k}': array{self[k].shape}" for k in self) + "}"


class FullyConnectedNet:
    """A fully connected classifier with ReLUs, optional batch/layer norm and dropout, softmax loss.

    hidden_dims: sizes of the hidden layers; input_dim: D (inputs (N, D) or
    (N, d_1, ..., d_k) with product D); num_classes: C.
    dropout: probability of DROPPING a unit (0 disables); alternatively
    dropout_keep_ratio (CS231n 2021+): probability of KEEPING one (1 disables).
    dropout=1 is read as "no dropout" (the CS231n 2019 default).
    use_batchnorm=True means normalization='batchnorm' (CS231n 2017).
    reg: l2 strength; weight_scale: std of the 'random' (normal) initializer;
    initialization: 'random' | 'he' | 'xavier' | 'zero' (biases are 0, gamma 1).
    dtype: np.float32 or np.float64. seed: seeds the weights and the dropout
    masks, and with a seed every train-mode loss() call uses the same masks
    (as the homework's seeded dropout does, for gradient checks); without it
    the compile seed is drawn from NumPy's global state (np.random.seed works).
    batch_size: capacity of the compiled plans (larger batches grow them);
    backend: kernel backend ('numba' | 'numpy', default $GRAPHNET_BACKEND or numba).
    """

    def __init__(self, hidden_dims: Sequence[int], input_dim: int = 3 * 32 * 32, num_classes: int = 10,
                 dropout: float = 0.0, use_batchnorm: bool = False, reg: float = 0.0,
                 weight_scale: float = 1e-2, dtype: Any = np.float32, seed: int | None = None, *,
                 normalization: str | None = None, dropout_keep_ratio: float | None = None,
                 initialization: str = "random", batch_size: int = 100, backend: str | None = None) -> None:
        if use_batchnorm and normalization not in (None, "batchnorm"):
            raise ValueError(f"use_batchnorm=True conflicts with normalization={normalization!r}")
        if normalization is not None and normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be None, 'batchnorm' or 'layernorm', got {normalization!r}")
        self.normalization = "batchnorm" if use_batchnorm else normalization
        self.use_batchnorm = self.normalization == "batchnorm"
        self.drop_rate = _drop_rate(dropout, dropout_keep_ratio)
        self.use_dropout = self.drop_rate > 0
        self.hidden_dims = [int(h) for h in hidden_dims]
        self.num_layers = 1 + len(self.hidden_dims)
        self.input_dim, self.num_classes = int(input_dim), int(num_classes)
        self.weight_scale, self.initialization = weight_scale, initialization
        self.dtype = np.dtype(dtype).type
        self.seed = seed
        self._reg = float(reg)
        self._capacity, self._backend = batch_size, backend
        self.param_names = _param_names(self.num_layers, self.normalization)
        self.net = self._compile(self._reg, seed if seed is not None else int(np.random.randint(0, 2**31 - 1)))
        self._mask_state = self.net.dropout_rng.bit_generator.state if seed is not None else None
        self.dropout_param: dict[str, Any] = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": self.drop_rate}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params: list[dict[str, Any]] = []
        if self.normalization is not None:
            self.bn_params = [{"mode": "train"} for _ in self.hidden_dims]
            self._link_bn_params()

    # ---- construction ---------------------------------------------------------------------

    def _compile(self, reg: float, seed: int) -> CompiledNetwork:
        self.spec = fc_net_spec(self.hidden_dims, self.input_dim, self.num_classes, dropout=self.drop_rate,
                                normalization=self.normalization, reg=reg, weight_scale=self.weight_scale,
                                initialization=self.initialization, name=type(self).__name__)
        return compile(self.spec, batch_size=self._capacity, dtype=np.dtype(self.dtype), backend=self._backend,
                       seed=seed)

    def _link_bn_params(self) -> None:
        """Point each bn_params dict at the network's live statistics (batchnorm) and settings."""
        prefix, op = NORMALIZATIONS[self.normalization]  # type: ignore[index]
        for i, bn_param in enumerate(self.bn_params, start=1):
            node = self.spec.node(f"{prefix}{i}")
            bn_param["eps"] = node.eps
            if op == "batchnorm":
                bn_param["momentum"] = node.momentum
                bn_param["running_mean"] = self.net.state[f"{prefix}{i}.running_mean"]
                bn_param["running_var"] = self.net.state[f"{prefix}{i}.running_var"]

    # ---- the homework's attributes ---------------------------------------------------------------

    @property
    def params(self) -> ModelParams:
        """Homework name -> live view of the compiled network's parameter (assignment copies in)."""
        return ModelParams(self)

    @params.setter
    def params(self, values: Mapping[str, np.ndarray]) -> None:
        view = ModelParams(self)
        for key, value in values.items():
            view[key] = value

    @property
    def reg(self) -> float:
        """L2 strength (the spec's l2). Setting it recompiles the network, keeping parameters
        and statistics; views taken from `params` before the change no longer track it."""
        return self._reg

    @reg.setter
    def reg(self, value: float) -> None:
        value = float(value)
        if value == self._reg:
            return
        old = self.net
        net = self._compile(value, 0)
        net.load_state_dict(old.state_dict())
        net.dropout_rng.bit_generator.state = old.dropout_rng.bit_generator.state
        self.net, self._reg = net, value
        if self.normalization is not None:
            self._link_bn_params()

    # ---- running ---------------------------------------------------------------------------------

    def prepare_batch(self, X: Any, y: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """X as a C-contiguous (N, input_dim) array of the model's dtype; y as int64 (N,) (or None)."""
        X = np.asarray(X)
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != self.input_dim:
            raise ValueError(f"expected inputs of shape (N, {self.input_dim}) or (N, d_1, ..., d_k) with "
                             f"d_1 * ... * d_k = {self.input_dim}, got {X.shape}")
        n = X.shape[0]
        Xp = np.ascontiguousarray(X.reshape(n, self.input_dim), dtype=self.dtype)
        return Xp, None if y is None else as_labels(y, n)

    def _set_mode(self, mode: str) -> None:
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode

    def loss(self, X: Any, y: Any = None) -> Any:
        """Scores (N, C) without y; (loss, grads) with y (N,), grads keyed like `params`."""
        Xp, yp = self.prepare_batch(X, y)
        if yp is None:
            self._set_mode("test")
            return self.net.forward(Xp)
        self._set_mode("train")
        if self._mask_state is not None:  # seeded: the same dropout masks on every call
            self.net.dropout_rng.bit_generator.state = self._mask_state
        loss, grads = self.net.loss(Xp, yp)
        return loss, {key: grads[name] for key, name in self.param_names.items()}

    def __repr__(self) -> str:
        dims = [self.input_dim, *self.hidden_dims, self.num_classes]
        extras = [f"normalization={self.normalization!r}"] if self.normalization else []
        extras += [f"dropout={self.drop_rate:g}"] if self.use_dropout else []
        extras += [f"reg={self._reg:g}", np.dtype(self.dtype).name]
        return f"{type(self).__name__}({'-'.join(map(str, dims))}, {', '.join(extras)})"


def _drop_rate(dropout: float, dropout_keep_ratio: float | None) -> float:
    if dropout_keep_ratio is not None:
        if dropout not in (0, 0.0, 1, 1.0):
            raise ValueError("give dropout (drop probability) or dropout_keep_ratio (keep probability), not both")
        if not 0 < dropout_keep_ratio <= 1:
            raise ValueError(f"dropout_keep_ratio must be in (0, 1], got {dropout_keep_ratio}")
        return 1.0 - float(dropout_keep_ratio)
    if dropout == 1:
        return 0.0
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout (the drop probability) must be in [0, 1), got {dropout}")
    return float(dropout)


class TwoLayerNet(FullyConnectedNet):
    """affine - relu - affine - softmax (CS231n's TwoLayerNet), params W1, b1, W2, b2.

    weight_scale defaults to 1e-2 (issue 6; CS231n's fc_net.py uses 1e-3).
    dtype defaults to float64, like the homework's arrays (its notebook checks
    the loss to 1e-10).
    """

    def __init__(self, input_dim: int = 3 * 32 * 32, hidden_dim: int = 100, num_classes: int = 10,
                 weight_scale: float = 1e-2, reg: float = 0.0, *, dtype: Any = np.float64,
                 seed: int | None = None, batch_size: int = 100, backend: str | None = None) -> None:
        super().__init__([hidden_dim], input_dim=input_dim, num_classes=num_classes, reg=reg,
                         weight_scale=weight_scale, dtype=dtype, seed=seed, batch_size=batch_size,
                         backend=backend)
