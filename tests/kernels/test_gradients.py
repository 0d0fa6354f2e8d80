"""Central-difference gradient checks (float64), driven by the kernel table.

Every kernel in KERNEL_NAMES is either a gradient kernel with an entry in
GRADIENT_CASES (a backward kernel, or a loss that writes its own gradient),
the forward kernel such an entry differentiates, or listed in WITHOUT_GRADIENT
with the reason; a new kernel that is none of these fails
`test_every_kernel_is_classified`. Inputs come from the kernels' example table
(graphnet.kernels.examples), for every activation code where the kernel takes one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from graphnet.kernels import ACTIVATION_CODES, KERNEL_NAMES, KernelBackend
from graphnet.kernels.examples import EXAMPLES, example_args

from graphnet.gradient_check import eval_numerical_gradient

H = 1e-6
MAX_REL_ERROR = 1e-6
SHAPE = (5, 4)


@dataclass(frozen=True)
class GradientCase:
    """How a gradient kernel is checked against central differences of its forward kernel.

    - `forward`: the kernel computing the function; `wrt`: its arguments differentiated.
    - `output`: the forward argument holding the output Y; the scalar checked is
      sum(G * Y) for a fixed random G. None: the forward returns a loss, the scalar.
    - `backward(args, G)`: the gradient kernel's arguments, from the forward's
      arguments after it ran (saved tensors, outputs). None: the forward kernel
      writes the gradients itself (a loss).
    - `grads`: the arguments that receive d/d wrt, in `wrt` order (of the backward
      call, or of the forward call when `backward` is None; zeroed before the call).
    - `h`: the difference step.
    """

    forward: str
    wrt: tuple[int, ...]
    grads: tuple[int, ...]
    output: int | None = None
    backward: Callable[[list[Any], np.ndarray], tuple[Any, ...]] | None = None
    h: float = H


def _e(a: np.ndarray) -> np.ndarray:
    return np.empty_like(a)


def _loss(name: str, wrt: tuple[int, ...] = (0,), grads: tuple[int, ...] = (2,), h: float = H) -> GradientCase:
    return GradientCase(name, wrt, grads, h=h)


GRADIENT_CASES: dict[str, GradientCase] = {
    "act_backward": GradientCase(
        "act_forward", wrt=(0,), output=3, grads=(4,),
        backward=lambda a, G: (G, a[3], a[1], a[2], _e(G))),
    "act_bias_backward": GradientCase(  # the forward is in place: arg 0 is Z before, Y after
        "bias_act_forward", wrt=(0, 1), output=0, grads=(4, 5),
        backward=lambda a, G: (G, a[0], a[2], a[3], _e(G), _e(a[1]))),
    "softmax_backward": GradientCase(
        "softmax_forward", wrt=(0,), output=1, grads=(2,),
        backward=lambda a, G: (G, a[1], _e(G))),
    "batchnorm_backward": GradientCase(
        "batchnorm_train_forward", wrt=(0, 1, 2), output=7, grads=(4, 5, 6),
        backward=lambda a, G: (G, a[8], a[1], a[9], _e(G), _e(a[1]), _e(a[2]))),
    "layernorm_backward": GradientCase(
        "layernorm_forward", wrt=(0, 1, 2), output=4, grads=(4, 5, 6),
        backward=lambda a, G: (G, a[5], a[1], a[6], _e(G), _e(a[1]), _e(a[2]))),
    "dropout_backward": GradientCase(  # the forward turns its uniforms (arg 2) into the mask
        "dropout_forward", wrt=(0,), output=3, grads=(2,),
        backward=lambda a, G: (G, a[2], _e(G))),
    "col2im": GradientCase(  # the adjoint of the gather: d sum(G * cols) / dX
        "im2col", wrt=(0,), output=7, grads=(7,),
        backward=lambda a, G: (G, *a[1:7], _e(a[0]))),
    "act_channel_bias_backward": GradientCase(
        "channel_bias_act_forward", wrt=(0, 1), output=4, grads=(4, 5),
        backward=lambda a, G: (G, a[4], a[2], a[3], _e(a[0]), _e(a[1]))),
    "max_pool_backward": GradientCase(
        "max_pool_forward", wrt=(0,), output=7, grads=(8,),
        backward=lambda a, G: (G, a[0], *a[1:7], _e(a[0]))),
    "avg_pool_backward": GradientCase(
        "avg_pool_forward", wrt=(0,), output=7, grads=(7,),
        backward=lambda a, G: (G, *a[1:7], _e(a[0]))),
    "global_avg_pool_backward": GradientCase(
        "global_avg_pool_forward", wrt=(0,), output=1, grads=(1,),
        backward=lambda a, G: (G, _e(a[0]))),
    "spatial_batchnorm_backward": GradientCase(
        "spatial_batchnorm_train_forward", wrt=(0, 1, 2), output=7, grads=(4, 5, 6),
        backward=lambda a, G: (G, a[8], a[1], a[9], _e(G), _e(a[1]), _e(a[2]))),
    "softmax_cross_entropy": _loss("softmax_cross_entropy"),
    # the example's probabilities go down to ~1e-4, where -log p curves as 1/p^2: a smaller step
    "cross_entropy": _loss("cross_entropy", h=1e-8),
    "svm_loss": _loss("svm_loss"),
    "mse_loss": _loss("mse_loss"),
    "sigmoid_bce_loss": _loss("sigmoid_bce_loss"),
    "mae_loss": _loss("mae_loss"),
    "huber_loss": _loss("huber_loss", grads=(3,)),
    "weighted_softmax_cross_entropy": _loss("weighted_softmax_cross_entropy", grads=(3,)),
    "weighted_sigmoid_bce_loss": _loss("weighted_sigmoid_bce_loss", grads=(3,)),
    "l2_penalty": _loss("l2_penalty", grads=(1,)),  # dW += l2 * W: checked from dW = 0
}

WITHOUT_GRADIENT: dict[str, str] = {
    "batchnorm_eval_forward": "eval mode only: never on a backward path",
    "spatial_batchnorm_eval_forward": "eval mode only: never on a backward path",
    "affine_small_forward": "eval mode only (small-batch inference): never on a backward path",
    "affine_packed_forward": "eval mode only (inference on packed weights): never on a backward path",
    "affine_packed_forward_columns": "eval mode only (inference on packed weights): never on a backward path",
    "add": "its gradient is its upstream gradient, passed on by copy_into",
    "add_into": "accumulates gradients; linear, no gradient of its own",
    "copy_into": "passes a gradient on; linear, no gradient of its own",
    "sum_squares": "the l2 term of an eval-mode loss; l2_penalty carries its gradient",
    "scale_inplace": "gradient clipping: acts on gradients",
    "all_finite": "a check, not a function of the parameters",
    "flip_shift_images": "augments training inputs: no parameter reaches it",
    "sgd_update": "an optimizer update: consumes a gradient",
    "momentum_update": "an optimizer update: consumes a gradient",
    "nesterov_update": "an optimizer update: consumes a gradient",
    "rmsprop_update": "an optimizer update: consumes a gradient",
    "adam_update": "an optimizer update: consumes a gradient",
    "adamw_update": "an optimizer update: consumes a gradient",
}


def _params() -> list[Any]:
    """(gradient kernel, activation code) for every case, every activation code where the forward takes one."""
    params = []
    for name, case in GRADIENT_CASES.items():
        if EXAMPLES[case.forward].act_arg is None:
            params.append(pytest.param(name, None, id=name))
        else:
            params += [pytest.param(name, code, id=f"{name}-{act}") for act, code in ACTIVATION_CODES.items()]
    return params


def test_every_kernel_is_classified():
    forwards = {case.forward for case in GRADIENT_CASES.values()}
    classified = set(GRADIENT_CASES) | forwards | set(WITHOUT_GRADIENT)
    assert not set(KERNEL_NAMES) - classified, (
        f"kernels neither checked here nor listed in WITHOUT_GRADIENT: {sorted(set(KERNEL_NAMES) - classified)}")
    assert not (set(GRADIENT_CASES) | forwards) & set(WITHOUT_GRADIENT)
    assert classified <= set(KERNEL_NAMES), sorted(classified - set(KERNEL_NAMES))
    backward_kernels = {name for name in KERNEL_NAMES if name.endswith("_backward")}
    assert backward_kernels <= set(GRADIENT_CASES), sorted(backward_kernels - set(GRADIENT_CASES))


def clone(args: list[Any]) -> list[Any]:
    """Copies of the arrays among `args` (scalars kept)."""
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |a - n| relative to the gradient's scale."""
    scale = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)), 1e-12)
    return float(np.max(np.abs(analytic - numeric)) / scale)


def analytic_gradients(backend: KernelBackend, name: str, args: list[Any], G: np.ndarray | None) -> list[np.ndarray]:
    """Gradient kernel `name`'s results for `args` (its forward kernel's), in `wrt` order."""
    case = GRADIENT_CASES[name]
    ran = clone(args)
    if case.backward is None:
        for k in case.grads:
            ran[k][...] = 0
        backend[case.forward](*ran)
        return [ran[k] for k in case.grads]
    backend[case.forward](*ran)
    backward_args = case.backward(ran, G)
    backend[name](*backward_args)
    return [backward_args[k] for k in case.grads]


def scalar(backend: KernelBackend, case: GradientCase, args: list[Any], G: np.ndarray | None) -> float:
    """The function the gradient kernel differentiates, on fresh copies of `args`."""
    ran = clone(args)
    result = backend[case.forward](*ran)
    return float(result) if case.output is None else float(np.sum(G * ran[case.output]))


@pytest.mark.parametrize("name, act", _params())
def test_gradient_matches_central_differences(backend: KernelBackend, name: str, act: int | None) -> None:
    case = GRADIENT_CASES[name]
    args = list(example_args(case.forward, np.float64, SHAPE, seed=1234, **({} if act is None else {"act": act})))
    G = None
    if case.output is not None:
        G = np.random.default_rng(99).standard_normal(args[case.output].shape)
    analytic = analytic_gradients(backend, name, args, G)
    for position, grad in zip(case.wrt, analytic):
        numeric = eval_numerical_gradient(lambda _: scalar(backend, case, args, G), args[position],
                                          verbose=False, h=case.h)
        err = rel_error(grad, numeric)
        assert err < MAX_REL_ERROR, f"arg {position}: relative error {err:.2e}\nanalytic {grad}\nnumeric {numeric}"
        assert np.any(grad != 0), f"arg {position}: gradient identically zero (vacuous check)"
