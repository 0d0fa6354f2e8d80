"""A shared check of the optimizer tests: a step on a batch holding a NaN changes nothing."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from graphnet.errors import NonFiniteError


def assert_nan_step_changes_nothing(opt: Any, poison: Callable[[], None], X: Any, y: Any) -> None:
    """After one good step, `poison()` puts a NaN in the batch (X, y): the next step raises
    NonFiniteError and leaves the step count, the moments, the parameters and the running
    statistics as they were."""
    net = opt.net
    before, params, state = opt.state_dict(), net.store.values.copy(), net.store.state.copy()
    poison()
    with np.errstate(all="ignore"), pytest.raises(NonFiniteError, match="at step 2"):
        opt.step(X, y)
    after = opt.state_dict()
    assert after["t"] == before["t"] == 1
    for name, slot in before["slots"].items():
        np.testing.assert_array_equal(after["slots"][name], slot, err_msg=name)
    np.testing.assert_array_equal(net.store.values, params)
    np.testing.assert_array_equal(net.store.state, state)  # running statistics too
