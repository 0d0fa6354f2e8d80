"""Table-driven parity: every kernel, numba vs NumPy twin vs a float64 reference.

The input table is graphnet.kernels.examples.EXAMPLES (one entry per kernel);
REFERENCES below gives an independent float64 implementation of each kernel.
A kernel without an example or a reference fails here.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
from graphnet.kernels import KERNEL_NAMES, available_backends, get_backend
from graphnet.kernels.codes import ACTIVATION_CODES
from graphnet.kernels.examples import EXAMPLES, example_args

SHAPES = [(7, 13), (1, 1), (1, 13), (13, 1)]
ACTS = tuple(ACTIVATION_CODES.values())


def f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def act64(x: np.ndarray, act: int, alpha: float) -> np.ndarray:
    x = f64(x)
    if act == 0:
        return x.copy()
    if act == 1:
        return np.where(x > 0, x, 0.0)
    if act == 2:
        return np.where(x > 0, x, alpha * x)
    if act == 3:
        return np.exp(-np.logaddexp(0.0, -x))
    return np.tanh(x)


def act_slope64(y: np.ndarray, act: int, alpha: float) -> np.ndarray:
    y = f64(y)
    if act == 0:
        return np.ones_like(y)
    if act == 1:
        return (y > 0).astype(np.float64)
    if act == 2:
        return np.where(y > 0, 1.0, alpha)
    if act == 3:
        return y * (1 - y)
    return 1 - y * y


def softmax64(x: np.ndarray) -> np.ndarray:
    x = f64(x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def onehot(y: np.ndarray, c: int) -> np.ndarray:
    out = np.zeros((y.shape[0], c))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


def adam64(w, dw, m, v, lr, b1, b2, eps, t):  # noqa: ANN001, ANN202
    m = b1 * f64(m) + (1 - b1) * f64(dw)
    v = b2 * f64(v) + (1 - b2) * f64(dw) ** 2
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return f64(w) - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def ref_svm(X, y, dX):  # noqa: ANN001, ANN202
    X = f64(X)
    n, c = X.shape
    loss, grad = 0.0, np.zeros_like(X)
    for i in range(n):
        for j in range(c):
            if j == y[i]:
                continue
            margin = X[i, j] - X[i, y[i]] + 1
            if margin > 0:
                loss += margin
                grad[i, j] += 1
                grad[i, y[i]] -= 1
    return loss / n, {2: grad / n}


def ref_batchnorm_train(X, gamma, beta, eps, mom, rm, rv, out, xhat, inv_std):  # noqa: ANN001, ANN202
    X = f64(X)
    mean, var = X.mean(axis=0), X.var(axis=0)
    xh = (X - mean) / np.sqrt(var + eps)
    return None, {
        5: mom * f64(rm) + (1 - mom) * mean,
        6: mom * f64(rv) + (1 - mom) * var,
        7: f64(gamma) * xh + f64(beta),
        8: xh,
        9: 1 / np.sqrt(var + eps),
    }


def ref_layernorm(X, gamma, beta, eps, out, xhat, inv_std):  # noqa: ANN001, ANN202
    X = f64(X)
    mean, var = X.mean(axis=1, keepdims=True), X.var(axis=1, keepdims=True)
    xh = (X - mean) / np.sqrt(var + eps)
    return None, {4: f64(gamma) * xh + f64(beta), 5: xh, 6: (1 / np.sqrt(var + eps)).ravel()}


def norm_backward64(dY, xhat, gamma, inv_std, axis):  # noqa: ANN001, ANN202
    """Staged (computation-graph) backward of (x - mean) * inv_std along `axis`."""
    dY, xhat, gamma = f64(dY), f64(xhat), f64(gamma)
    inv = f64(inv_std)
    inv = inv.reshape(1, -1) if axis == 0 else inv.reshape(-1, 1)
    count = dY.shape[axis]
    xc = xhat / inv
    dxhat = dY * gamma
    dvar = np.sum(dxhat * xc * -0.5 * inv**3, axis=axis, keepdims=True)
    dmean = np.sum(-dxhat * inv, axis=axis, keepdims=True) + dvar * np.mean(-2 * xc, axis=axis, keepdims=True)
    dx = dxhat * inv + dvar * 2 * xc / count + dmean / count
    return {4: dx, 5: np.sum(dY * xhat, axis=0), 6: np.sum(dY, axis=0)}


def ref_dropout_forward(X, rate, mask, out):  # noqa: ANN001, ANN202
    keep = mask >= mask.dtype.type(rate)
    scale = mask.dtype.type(1) / (mask.dtype.type(1) - mask.dtype.type(rate))
    m = np.where(keep, f64(scale), 0.0)
    return None, {2: m, 3: f64(X) * m}


def ref_huber(Y: np.ndarray, T: np.ndarray, delta: float, dY: np.ndarray) -> tuple[float, dict]:
    """PyTorch's HuberLoss(delta), mean over all elements, and its gradient."""
    d = f64(Y) - f64(T)
    inside = np.abs(d) <= delta
    loss = np.where(inside, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))
    return float(loss.mean()), {3: np.where(inside, d, delta * np.sign(d)) / Y.size}


def ref_weighted_softmax_cross_entropy(X: np.ndarray, y: np.ndarray, w: np.ndarray,
                                       dX: np.ndarray) -> tuple[float, dict]:
    """PyTorch's CrossEntropyLoss(weight=w): sum_i w[y_i] l_i / sum_i w[y_i], written out per row."""
    p = softmax64(X)
    weights = f64(w)[y]
    losses = -np.log(p[np.arange(len(y)), y])
    total = weights.sum()
    return float((weights * losses).sum() / total), {3: weights[:, None] * (p - onehot(y, X.shape[1])) / total}


def bce_weights64(T: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Each target's weight: w[0] for 0, w[1] for 1, linear in between."""
    return (1 - f64(T)) * float(w[0]) + f64(T) * float(w[1])


def padded64(X, kh, kw, sh, sw, ph, pw, oh, ow):  # noqa: ANN001, ANN201
    """X (N, C, H, W) in float64, zero-padded so that every window of an (oh, ow) output lies inside:
    ph rows on top, pw columns on the left, as many as the output needs at the bottom/right."""
    n, c, h, w = X.shape
    rows, cols = max(h + ph, (oh - 1) * sh + kh), max(w + pw, (ow - 1) * sw + kw)
    out = np.zeros((n, c, rows, cols))
    out[:, :, ph:ph + h, pw:pw + w] = f64(X)
    return out


def windows64(X, kh, kw, sh, sw, ph, pw, oh, ow, fill=0.0):  # noqa: ANN001, ANN201
    """(N, C, oh, ow, kh, kw): the window of every output position, `fill` in the padding."""
    n, c, h, w = X.shape
    padded = padded64(X, kh, kw, sh, sw, ph, pw, oh, ow)
    inside = padded64(np.ones_like(X), kh, kw, sh, sw, ph, pw, oh, ow)
    padded[inside == 0] = fill
    out = np.empty((n, c, oh, ow, kh, kw))
    for oy in range(oh):
        for ox in range(ow):
            out[:, :, oy, ox] = padded[:, :, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw]
    return out


def ref_im2col(X, kh, kw, sh, sw, ph, pw, cols):  # noqa: ANN001, ANN202
    win = windows64(X, kh, kw, sh, sw, ph, pw, cols.shape[1], cols.shape[2])
    return None, {7: win.transpose(0, 2, 3, 1, 4, 5).reshape(cols.shape)}


def ref_col2im(dcols, kh, kw, sh, sw, ph, pw, dX):  # noqa: ANN001, ANN202
    """The adjoint, element by element: every dcols entry added to the input position it came from."""
    n, c, h, w = dX.shape
    out = np.zeros(dX.shape)
    for b, oy, ox, q in np.ndindex(*dcols.shape):
        ci, i, j = q // (kh * kw), (q // kw) % kh, q % kw
        y, x = oy * sh + i - ph, ox * sw + j - pw
        if 0 <= y < h and 0 <= x < w:
            out[b, ci, y, x] += float(dcols[b, oy, ox, q])
    return None, {7: out}


def ref_max_pool_backward(dY, X, kh, kw, sh, sw, ph, pw, dX):  # noqa: ANN001, ANN202
    out = np.zeros(X.shape)
    win = windows64(X, kh, kw, sh, sw, ph, pw, dY.shape[2], dY.shape[3], fill=-np.inf)
    for b, ci, oy, ox in np.ndindex(*dY.shape):
        i, j = np.unravel_index(np.argmax(win[b, ci, oy, ox]), (kh, kw))
        out[b, ci, oy * sh + i - ph, ox * sw + j - pw] += float(dY[b, ci, oy, ox])
    return None, {8: out}


def ref_avg_pool_backward(dY, kh, kw, sh, sw, ph, pw, dX):  # noqa: ANN001, ANN202
    n, c, h, w = dX.shape
    out = np.zeros(dX.shape)
    for b, ci, oy, ox in np.ndindex(*dY.shape):
        for i, j in np.ndindex(kh, kw):
            y, x = oy * sh + i - ph, ox * sw + j - pw
            if 0 <= y < h and 0 <= x < w:
                out[b, ci, y, x] += float(dY[b, ci, oy, ox]) / (kh * kw)
    return None, {7: out}


def ref_spatial_batchnorm_train(X, gamma, beta, eps, mom, rm, rv, out, xhat, inv_std):  # noqa: ANN001, ANN202
    """The per-feature reference on X moved to (N*S, C): spatial batchnorm is batchnorm over positions too."""
    n, c, s = X.shape
    _, flat = ref_batchnorm_train(f64(X).transpose(0, 2, 1).reshape(n * s, c), gamma, beta, eps, mom, rm, rv,
                                  None, None, None)
    return None, {5: flat[5], 6: flat[6], 7: flat[7].reshape(n, s, c).transpose(0, 2, 1),
                  8: flat[8].reshape(n, s, c).transpose(0, 2, 1), 9: flat[9]}


def ref_spatial_batchnorm_backward(dY, xhat, gamma, inv_std, dX, dgamma, dbeta):  # noqa: ANN001, ANN202
    n, c, s = dY.shape

    def rows(a):  # noqa: ANN001, ANN202
        return f64(a).transpose(0, 2, 1).reshape(n * s, c)

    flat = norm_backward64(rows(dY), rows(xhat), gamma, inv_std, axis=0)
    return None, {4: flat[4].reshape(n, s, c).transpose(0, 2, 1), 5: flat[5], 6: flat[6]}


def ref_flip_shift_images(X, flip, dy, dx, out):  # noqa: ANN001, ANN202
    """Pixel by pixel: flipped left-right first, then moved; zeros where nothing moved in."""
    n, c, h, w = X.shape
    expected = np.zeros(X.shape)
    for b, ci, y, x in np.ndindex(*X.shape):
        mirrored = f64(X[b, ci])[:, ::-1] if flip[b] else f64(X[b, ci])
        sy, sx = y - dy[b], x - dx[b]
        if 0 <= sy < h and 0 <= sx < w:
            expected[b, ci, y, x] = mirrored[sy, sx]
    return None, {4: expected}


REFERENCES = {
    "flip_shift_images": ref_flip_shift_images,
    "im2col": ref_im2col,
    "col2im": ref_col2im,
    "channel_bias_act_forward": lambda Z, b, act, alpha, Y: (
        None, {4: act64(f64(Z).transpose(0, 2, 1) + f64(b)[:, None], act, alpha)}),
    "act_channel_bias_backward": lambda dY, Y, act, alpha, dZ, db: (
        None, {4: (f64(dY) * act_slope64(Y, act, alpha)).transpose(0, 2, 1),
               5: (f64(dY) * act_slope64(Y, act, alpha)).sum(axis=(0, 2))}),
    "max_pool_forward": lambda X, kh, kw, sh, sw, ph, pw, Y: (
        None, {7: windows64(X, kh, kw, sh, sw, ph, pw, Y.shape[2], Y.shape[3], fill=-np.inf).max(axis=(4, 5))}),
    "max_pool_backward": ref_max_pool_backward,
    "avg_pool_forward": lambda X, kh, kw, sh, sw, ph, pw, Y: (
        None, {7: windows64(X, kh, kw, sh, sw, ph, pw, Y.shape[2], Y.shape[3]).sum(axis=(4, 5)) / (kh * kw)}),
    "avg_pool_backward": ref_avg_pool_backward,
    "global_avg_pool_forward": lambda X, Y: (None, {1: f64(X).mean(axis=2)}),
    "global_avg_pool_backward": lambda dY, dX: (
        None, {1: np.repeat(f64(dY)[:, :, None], dX.shape[2], axis=2) / dX.shape[2]}),
    "spatial_batchnorm_train_forward": ref_spatial_batchnorm_train,
    "spatial_batchnorm_eval_forward": lambda X, gamma, beta, rm, rv, eps, out: (
        None,
        {6: (f64(gamma) * (f64(X).transpose(0, 2, 1) - f64(rm)) / np.sqrt(f64(rv) + eps)
             + f64(beta)).transpose(0, 2, 1)},
    ),
    "spatial_batchnorm_backward": ref_spatial_batchnorm_backward,
    "bias_act_forward": lambda Y, b, act, alpha: (None, {0: act64(f64(Y) + f64(b), act, alpha)}),
    "act_bias_backward": lambda dY, Y, act, alpha, dZ, db: (
        None,
        {4: f64(dY) * act_slope64(Y, act, alpha), 5: (f64(dY) * act_slope64(Y, act, alpha)).sum(axis=0)},
    ),
    "affine_small_forward": lambda X, W, b, act, alpha, Y: (
        None, {5: act64(f64(X) @ f64(W) + f64(b), act, alpha)}),
    "affine_packed_forward": lambda X, WT, b, act, alpha, Y: (
        None, {5: act64(f64(X) @ f64(WT).T + f64(b), act, alpha)}),
    "affine_packed_forward_columns": lambda X, WT, b, act, alpha, Y, lo, hi: (
        None, {5: act64(f64(X) @ f64(WT).T + f64(b), act, alpha)}),
    "act_forward": lambda X, act, alpha, out: (None, {3: act64(X, act, alpha)}),
    "act_backward": lambda dY, Y, act, alpha, dX: (None, {4: f64(dY) * act_slope64(Y, act, alpha)}),
    "softmax_forward": lambda X, out: (None, {1: softmax64(X)}),
    "softmax_backward": lambda dY, P, dX: (
        None,
        {2: np.stack([(np.diag(p) - np.outer(p, p)) @ g for p, g in zip(f64(P), f64(dY))])},
    ),
    "softmax_cross_entropy": lambda X, y, dX: (
        -np.mean(np.log(softmax64(X)[np.arange(len(y)), y])),
        {2: (softmax64(X) - onehot(y, X.shape[1])) / len(y)},
    ),
    "cross_entropy": lambda P, y, dP: (
        -np.mean(np.log(np.maximum(f64(P)[np.arange(len(y)), y], np.finfo(P.dtype).tiny))),
        {2: -onehot(y, P.shape[1]) / len(y) / np.maximum(f64(P), np.finfo(P.dtype).tiny)},
    ),
    "svm_loss": ref_svm,
    "mse_loss": lambda Y, T, dY: (np.mean((f64(Y) - f64(T)) ** 2), {2: 2 * (f64(Y) - f64(T)) / Y.size}),
    "sigmoid_bce_loss": lambda X, T, dX: (
        np.mean(f64(T) * np.logaddexp(0, -f64(X)) + (1 - f64(T)) * np.logaddexp(0, f64(X))),
        {2: (act64(X, 3, 0.0) - f64(T)) / X.size},
    ),
    "mae_loss": lambda Y, T, dY: (np.mean(np.abs(f64(Y) - f64(T))), {2: np.sign(f64(Y) - f64(T)) / Y.size}),
    "huber_loss": ref_huber,
    "weighted_softmax_cross_entropy": ref_weighted_softmax_cross_entropy,
    "weighted_sigmoid_bce_loss": lambda X, T, w, dX: (
        np.mean(bce_weights64(T, w) * (f64(T) * np.logaddexp(0, -f64(X)) + (1 - f64(T)) * np.logaddexp(0, f64(X)))),
        {3: bce_weights64(T, w) * (act64(X, 3, 0.0) - f64(T)) / X.size},
    ),
    "batchnorm_train_forward": ref_batchnorm_train,
    "batchnorm_eval_forward": lambda X, gamma, beta, rm, rv, eps, out: (
        None,
        {6: f64(gamma) * (f64(X) - f64(rm)) / np.sqrt(f64(rv) + eps) + f64(beta)},
    ),
    "batchnorm_backward": lambda dY, xhat, gamma, inv_std, dX, dgamma, dbeta: (
        None, norm_backward64(dY, xhat, gamma, inv_std, axis=0),
    ),
    "layernorm_forward": ref_layernorm,
    "layernorm_backward": lambda dY, xhat, gamma, inv_std, dX, dgamma, dbeta: (
        None, norm_backward64(dY, xhat, gamma, inv_std, axis=1),
    ),
    "dropout_forward": ref_dropout_forward,
    "dropout_backward": lambda dY, mask, dX: (None, {2: f64(dY) * f64(mask)}),
    "add": lambda A, B, out: (None, {2: f64(A) + f64(B)}),
    "add_into": lambda out, X: (None, {0: f64(out) + f64(X)}),
    "copy_into": lambda out, X: (None, {0: f64(X)}),
    "l2_penalty": lambda W, dW, l2: (0.5 * l2 * np.sum(f64(W) ** 2), {1: f64(dW) + l2 * f64(W)}),
    "sum_squares": lambda X: (np.sum(f64(X) ** 2), {}),
    "scale_inplace": lambda X, s: (None, {0: f64(X) * s}),
    "all_finite": lambda X: (bool(np.isfinite(X).all()), {}),
    "sgd_update": lambda w, dw, lr: (None, {0: f64(w) - lr * f64(dw)}),
    "momentum_update": lambda w, dw, v, lr, mu: (
        None, {0: f64(w) + mu * f64(v) - lr * f64(dw), 2: mu * f64(v) - lr * f64(dw)},
    ),
    "nesterov_update": lambda w, dw, v, lr, mu: (
        None,
        {
            0: f64(w) - mu * f64(v) + (1 + mu) * (mu * f64(v) - lr * f64(dw)),
            2: mu * f64(v) - lr * f64(dw),
        },
    ),
    "rmsprop_update": lambda w, dw, cache, lr, decay, eps: (
        None,
        {
            0: f64(w) - lr * f64(dw) / (np.sqrt(decay * f64(cache) + (1 - decay) * f64(dw) ** 2) + eps),
            2: decay * f64(cache) + (1 - decay) * f64(dw) ** 2,
        },
    ),
    "adam_update": lambda w, dw, m, v, lr, b1, b2, eps, t: (
        None, dict(zip((0, 2, 3), adam64(w, dw, m, v, lr, b1, b2, eps, t))),
    ),
    "adamw_update": lambda w, dw, m, v, lr, b1, b2, eps, wd, t: (
        None, dict(zip((0, 2, 3), adam64(f64(w) * (1 - lr * wd), dw, m, v, lr, b1, b2, eps, t))),
    ),
}

# float32 kernels vs float64 math: a few ulps per op, sums of up to 13 terms
TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6), np.dtype(np.float64): dict(rtol=1e-11, atol=1e-13)}
# numba vs NumPy twin, same dtype
PARITY_TOL = {np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6), np.dtype(np.float64): dict(rtol=1e-12, atol=1e-14)}


def cases() -> list:
    out = []
    for name in KERNEL_NAMES:
        acts = ACTS if EXAMPLES[name].act_arg is not None else (None,)
        for act in acts:
            for shape in SHAPES:
                out.append(pytest.param(name, act, shape, id=f"{name}-act{act}-{shape[0]}x{shape[1]}"))
    return out


def tolerance(table: dict, name: str, args: tuple, dtype: np.dtype) -> dict:
    """Tolerances for `name`; norm backward scales atol by max(inv_std), the
    factor by which it amplifies rounding (316 for a zero-variance row)."""
    tol = dict(table[dtype])
    if name in ("batchnorm_backward", "layernorm_backward", "spatial_batchnorm_backward"):
        tol["atol"] *= max(1.0, float(np.max(args[3])))
    return tol


def run(backend_name: str, name: str, args: tuple) -> tuple[object, list]:
    args = [copy.deepcopy(a) for a in args]
    result = getattr(get_backend(backend_name), name)(*args)
    return result, args


def test_every_kernel_has_an_example_and_a_reference() -> None:
    assert set(EXAMPLES) == set(KERNEL_NAMES)
    assert set(REFERENCES) == set(KERNEL_NAMES)
    assert len(KERNEL_NAMES) == len(set(KERNEL_NAMES))


def test_kernel_modules_define_both_twins() -> None:
    import importlib
    import inspect

    from graphnet.kernels import KERNEL_MODULES

    for name, module_name in KERNEL_MODULES.items():
        module = importlib.import_module(f"graphnet.kernels.{module_name}")
        numba_fn = getattr(module, f"{name}_numba")
        numpy_fn = getattr(module, f"{name}_numpy")
        py_numba = getattr(numba_fn, "py_func", numba_fn)
        assert list(inspect.signature(py_numba).parameters) == list(inspect.signature(numpy_fn).parameters), name
        assert numpy_fn.__doc__, f"{name}_numpy needs a docstring"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, act, shape", cases())
def test_kernel_matches_reference(name: str, act: int | None, shape: tuple[int, int], dtype: type) -> None:
    dtype = np.dtype(dtype)
    args = example_args(name, dtype, shape, seed=hash((name, shape)) % 1000, act=act if act is not None else 1)
    expected_result, expected = REFERENCES[name](*copy.deepcopy(args))
    tol = tolerance(TOL, name, args, dtype)
    parity_tol = tolerance(PARITY_TOL, name, args, dtype)
    results = {}
    for backend_name in available_backends():
        result, out = run(backend_name, name, args)
        results[backend_name] = (result, out)
        if expected_result is not None:
            if isinstance(expected_result, bool):
                assert result is expected_result or result == expected_result
            else:
                assert isinstance(result, float), f"{name} must return a Python float"
                np.testing.assert_allclose(result, expected_result, **tol, err_msg=f"{backend_name} loss")
        else:
            assert result is None
        for index, want in expected.items():
            assert out[index].dtype == dtype
            np.testing.assert_allclose(out[index], want, **tol, err_msg=f"{backend_name} arg {index}")
    if len(results) == 2:
        (r1, a1), (r2, a2) = results["numba"], results["numpy"]
        if isinstance(r1, float):
            np.testing.assert_allclose(r1, r2, **parity_tol)
        else:
            assert r1 == r2
        for x1, x2 in zip(a1, a2):
            if isinstance(x1, np.ndarray):
                np.testing.assert_allclose(x1, x2, **parity_tol)
