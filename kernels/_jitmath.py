"""Scalar math shared by the numba kernels (inlined into them), and their elementwise
operands' flat views (``flat_operands``).

``fast_exp`` is a float32 exp that LLVM can vectorize (numba's ``np.exp`` in
a loop is a scalar libm call): a Cephes-style polynomial on the reduced
argument, scaled by 2^n by adding n to its exponent bits. ``exp_`` picks it
for float32 and ``np.exp`` for float64, at compile time; ``tanh_`` does the
same with ``fast_tanh``.

Callers live in other files; see ``_jit.py`` for how their caches notice
edits made here.
"""
from __future__ import annotations

import numpy as np

from ._jit import HAVE_NUMBA, JIT_OPTIONS, helper, kernel

# Cephes expf constants.
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_P0 = np.float32(1.9875691500e-4)
_P1 = np.float32(1.3981999507e-3)
_P2 = np.float32(8.3334519073e-3)
_P3 = np.float32(4.1665795894e-2)
_P4 = np.float32(1.6666665459e-1)
_P5 = np.float32(5.0000001201e-1)
#: Below this exp(x) < 1.19e-38 (~FLT_MIN): the result is flushed to 0.
FAST_EXP_MIN = np.float32(-87.33)
#: Above this exp(x) overflows float32: the result is +inf.
FAST_EXP_MAX = np.float32(88.72283)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_INF = np.float32(np.inf)

if HAVE_NUMBA:
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic, overload

    @intrinsic
    def _float32_from_bits(typingctx, bits):  # noqa: ANN001, ANN202
        """Reinterpret the low 32 bits of an integer as a float32."""
        if not isinstance(bits, types.Integer):
            return None

        def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
            value = args[0]
            if value.type.width != 32:
                value = builder.trunc(value, ir.IntType(32))
            return builder.bitcast(value, ir.FloatType())

        return types.float32(bits), codegen

    @intrinsic
    def _bits_of_float32(typingctx, value):  # noqa: ANN001, ANN202
        """The bits of a float32 as an int32."""
        if value != types.float32:
            return None

        def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
            return builder.bitcast(args[0], ir.IntType(32))

        return types.int32(value), codegen
else:  # pragma: no cover - only without numba

    def _float32_from_bits(bits):  # noqa: ANN001, ANN202
        return np.array(bits, dtype=np.int32).view(np.float32)[()]

    def _bits_of_float32(value):  # noqa: ANN001, ANN202
        return np.array(value, dtype=np.float32).view(np.int32)[()]


@helper
def fast_exp(x):  # noqa: ANN001, ANN201
    """exp of a float32 scalar; max rel. error ~3e-7; 0 below FAST_EXP_MIN."""
    xc = x if x > FAST_EXP_MIN else FAST_EXP_MIN  # NaN -> MIN, fixed below
    xc = xc if xc < FAST_EXP_MAX else FAST_EXP_MAX
    n = np.floor(xc * _LOG2E + _HALF)
    r = xc - n * _LN2_HI
    r = r - n * _LN2_LO
    p = _P0 * r + _P1
    p = p * r + _P2
    p = p * r + _P3
    p = p * r + _P4
    p = p * r + _P5
    p = p * (r * r) + r + _ONE
    # p * 2^n by adding n to p's exponent field. p is in [0.7, 1.42] and n in
    # [-126, 128]; the clamps keep the sum a normal exponent (1..254): at
    # n = -126, x >= -87.33 makes r > 0 so p >= 1 (biased exponent 127), and
    # at n = 128, x <= 88.72283 makes r < 0 so p < 1 (biased exponent 126).
    y = _float32_from_bits(_bits_of_float32(p) + (np.int32(n) << 23))
    y = _ZERO if x < FAST_EXP_MIN else y
    y = _INF if x > FAST_EXP_MAX else y
    return x if x != x else y


def exp_(x):  # noqa: ANN001, ANN201
    """exp in the argument's dtype: fast_exp for float32, np.exp otherwise."""
    return np.exp(x)


if HAVE_NUMBA:

    @overload(exp_, jit_options=JIT_OPTIONS, inline="always")
    def _exp_overload(x):  # noqa: ANN001, ANN202
        if isinstance(x, types.Float) and x.bitwidth == 32:
            return lambda x: fast_exp(x)
        return lambda x: np.exp(x)


@kernel
def exp_into(x, out):  # noqa: ANN001, ANN201
    """out = exp(x) over 1-D arrays, with the kernels' exp (for tests/bench)."""
    for i in range(x.shape[0]):
        out[i] = exp_(x[i])


# ---- constants in a scalar's own float type (a bare 1 or 1.0 would promote
# float32 math to float64)


def one_like(x):  # noqa: ANN001, ANN201
    """1 in the float type of x."""
    return np.asarray(x).dtype.type(1)


def zero_like(x):  # noqa: ANN001, ANN201
    """0 in the float type of x."""
    return np.asarray(x).dtype.type(0)


if HAVE_NUMBA:

    def _constant_overload(value):  # noqa: ANN001, ANN202
        def typer(x):  # noqa: ANN001, ANN202
            ftype = x.dtype if isinstance(x, types.Array) else x
            if not isinstance(ftype, types.Float):
                return None
            constant = ftype(value)
            return lambda x: constant

        return typer

    overload(one_like, jit_options=JIT_OPTIONS, inline="always")(_constant_overload(1.0))
    overload(zero_like, jit_options=JIT_OPTIONS, inline="always")(_constant_overload(0.0))


# ---- tanh: numba's float32 np.tanh is a slow scalar libm call (~19 ns)

_TANH_SMALL = np.float32(0.625)
_T0 = np.float32(-5.70498872745e-3)
_T1 = np.float32(2.06390887954e-2)
_T2 = np.float32(-5.37397155531e-2)
_T3 = np.float32(1.33314422036e-1)
_T4 = np.float32(-3.33332819422e-1)
_TWO = np.float32(2.0)


@helper
def fast_tanh(x):  # noqa: ANN001, ANN201
    """tanh of a float32 scalar (Cephes tanhf, branch-free): odd polynomial
    below |x| = 0.625, 1 - 2 / (exp(2|x|) + 1) above; rel. error < 1e-6."""
    z = np.abs(x)
    s = x * x
    p = _T0 * s + _T1
    p = p * s + _T2
    p = p * s + _T3
    p = p * s + _T4
    small = p * s * x + x
    big = _ONE - _TWO / (fast_exp(z + z) + _ONE)
    big = big if x >= _ZERO else -big
    return small if z < _TANH_SMALL else big


def tanh_(x):  # noqa: ANN001, ANN201
    """tanh in the argument's dtype: fast_tanh for float32, np.tanh otherwise."""
    return np.tanh(x)


if HAVE_NUMBA:

    @overload(tanh_, jit_options=JIT_OPTIONS, inline="always")
    def _tanh_overload(x):  # noqa: ANN001, ANN202
        if isinstance(x, types.Float) and x.bitwidth == 32:
            return lambda x: fast_tanh(x)
        return lambda x: np.tanh(x)


@kernel
def tanh_into(x, out):  # noqa: ANN001, ANN201
    """out = tanh(x) over 1-D arrays, with the kernels' tanh (for tests/bench)."""
    for i in range(x.shape[0]):
        out[i] = tanh_(x[i])


# ---- activations, as scalars (forward from the input, backward from the output)


@helper
def sigmoid_from_exp_(x, e):  # noqa: ANN001, ANN201
    """Logistic function of x, given e = exp(-|x|) (no overflow)."""
    s = one_like(x) / (one_like(x) + e)
    return s if x >= zero_like(x) else e * s


@helper
def sigmoid_(x):  # noqa: ANN001, ANN201
    """Logistic function, stable for any input (no overflow)."""
    return sigmoid_from_exp_(x, exp_(-np.abs(x)))


@helper
def relu_(v):  # noqa: ANN001, ANN201
    """max(v, 0), propagating NaN."""
    zero = zero_like(v)
    return zero if v < zero else v


@helper
def leaky_relu_(v, a):  # noqa: ANN001, ANN201
    """v if v >= 0 else a*v."""
    return a * v if v < zero_like(v) else v


@helper
def relu_grad_(dy, y):  # noqa: ANN001, ANN201
    """dy * relu'(x), from the output y."""
    return dy if y > zero_like(y) else zero_like(dy)


@helper
def leaky_relu_grad_(dy, y, a):  # noqa: ANN001, ANN201
    """dy * leaky_relu'(x), from the output y."""
    return dy if y > zero_like(y) else a * dy


@helper
def sigmoid_grad_(dy, y):  # noqa: ANN001, ANN201
    """dy * sigmoid'(x), from the output y."""
    return dy * (y * (one_like(y) - y))


@helper
def tanh_grad_(dy, y):  # noqa: ANN001, ANN201
    """dy * tanh'(x), from the output y."""
    return dy * (one_like(y) - y * y)


# ---- operands


@helper
def flat_operands(A, B, C, message):  # noqa: ANN001, ANN201
    """A, B and C as 1-D views; raises ValueError(message) unless they have one size."""
    a = A.reshape(A.size)
    b = B.reshape(B.size)
    c = C.reshape(C.size)
    if b.size != a.size or c.size != a.size:
        raise ValueError(message)
    return a, b, c


def tiny_like(x):  # noqa: ANN001, ANN201
    """The smallest normal number of the float type of x (a scalar or an array)."""
    return np.finfo(np.asarray(x).dtype).tiny


if HAVE_NUMBA:

    @overload(tiny_like, jit_options=JIT_OPTIONS, inline="always")
    def _tiny_like_overload(x):  # noqa: ANN001, ANN202
        ftype = x.dtype if isinstance(x, types.Array) else x
        if not isinstance(ftype, types.Float):
            return None
        tiny = ftype(float(np.finfo(np.dtype(ftype.name)).tiny))
        return lambda x: tiny
