"""Integer codes of the activation functions the kernels understand."""
from __future__ import annotations

IDENTITY = 0
RELU = 1
LEAKY_RELU = 2
SIGMOID = 3
TANH = 4

ACTIVATION_CODES: dict[str, int] = {
    "identity": IDENTITY,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "sigmoid": SIGMOID,
    "tanh": TANH,
}


def check_activation(act: int) -> None:
    """Raise ValueError unless `act` is one of the codes above."""
    if act not in ACTIVATION_CODES.values():
        raise ValueError(f"unknown activation code {act!r}; expected one of {ACTIVATION_CODES}")
