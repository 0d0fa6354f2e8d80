"""What the image ops share: their spec field types, and the window geometry.

An image value is `[C, H, W]` per example (channels first, as ONNX and PyTorch).
A window op (conv2d, max_pool2d, avg_pool2d) slides a `kh x kw` window by
`(sh, sw)` over its input padded by `top`/`left`/`bottom`/`right` zeros; its
output is `(H + top + bottom - kh) // sh + 1` rows by the same of the columns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import Field

from .base import MAX_DIM, ShapeError, Value

Dim = Annotated[int, Field(ge=1, le=MAX_DIM)]
Pad = Annotated[int, Field(ge=0, le=MAX_DIM)]
#: An int (both axes) or [rows, columns].
Size = Union[Dim, Annotated[list[Dim], Field(min_length=2, max_length=2)]]
PadSize = Union[Pad, Annotated[list[Pad], Field(min_length=2, max_length=2)]]
#: conv2d's padding: "valid" (none), "same" (the output has ceil(H / stride) rows; an odd total
#: puts the extra row at the bottom, as TensorFlow and ONNX's SAME_UPPER), an int or [rows, columns].
Padding = Union[Literal["valid", "same"], PadSize]


def pair(value: int | list[int]) -> tuple[int, int]:
    """An int or a [rows, columns] list as (rows, columns)."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class Window:
    """Kernel (kh, kw), stride (sh, sw) and padding (top, left, bottom, right) of a window op."""

    kh: int
    kw: int
    sh: int
    sw: int
    top: int
    left: int
    bottom: int
    right: int

    def output(self, h: int, w: int) -> tuple[int, int]:
        """(OH, OW) for an (H, W) input."""
        return (h + self.top + self.bottom - self.kh) // self.sh + 1, (w + self.left + self.right - self.kw) // self.sw + 1

    @property
    def args(self) -> tuple[int, int, int, int, int, int]:
        """(kh, kw, sh, sw, top, left): the kernels' geometry arguments."""
        return self.kh, self.kw, self.sh, self.sw, self.top, self.left

    @property
    def pads(self) -> list[int]:
        """ONNX's pads: [top, left, bottom, right]."""
        return [self.top, self.left, self.bottom, self.right]

    def describe(self) -> str:
        text = f"{self.kh}x{self.kw}"
        if (self.sh, self.sw) != (1, 1):
            text += f" stride {self.sh}x{self.sw}"
        if any(self.pads):
            text += f" pad {self.top},{self.left},{self.bottom},{self.right}"
        return text


def image(node: Any, inputs: list[Value], slot: int = 0) -> tuple[int, int, int]:
    """The (C, H, W) of input `slot`, or ShapeError saying what the op needs."""
    shape = inputs[slot].shape
    if len(shape) != 3:
        raise ShapeError(f"expects an image [C, H, W] per example, got shape {shape}; "
                         "give the input a shape such as [1, 28, 28]", slot)
    return shape  # type: ignore[return-value]


def window_of(node: Any, padding: Any, h: int, w: int, stride: Any = None) -> Window:
    """The window of a node with fields `kernel` and `stride` (None: the kernel) for an (h, w) input."""
    kh, kw = pair(node.kernel)
    stride = node.stride if stride is None else stride
    sh, sw = pair(stride) if stride is not None else (kh, kw)
    if padding == "valid":
        return Window(kh, kw, sh, sw, 0, 0, 0, 0)
    if padding == "same":
        top, bottom = _same(h, kh, sh)
        left, right = _same(w, kw, sw)
        return Window(kh, kw, sh, sw, top, left, bottom, right)
    ph, pw = pair(padding)
    return Window(kh, kw, sh, sw, ph, pw, ph, pw)


def _same(size: int, k: int, stride: int) -> tuple[int, int]:
    """(before, after) padding that gives ceil(size / stride) outputs, the extra one after."""
    total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def windowed_shape(node: Any, inputs: list[Value], channels: int | None, window: Window) -> Value:
    """The output [channels (default: the input's), OH, OW], or ShapeError naming both shapes
    when the kernel does not fit the padded input."""
    c, h, w = image(node, inputs)
    padded = (h + window.top + window.bottom, w + window.left + window.right)
    if window.kh > padded[0] or window.kw > padded[1]:
        raise ShapeError(f"kernel ({window.kh}, {window.kw}) is larger than the padded input {padded} "
                         f"(input shape {(c, h, w)}, padding top/left/bottom/right {tuple(window.pads)})", 0)
    return Value((c if channels is None else channels, *window.output(h, w)))
