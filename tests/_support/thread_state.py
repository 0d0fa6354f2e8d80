"""Test helper: graphnet's thread choice reset for a test, and put back after it."""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Iterator

import pytest
from threadpoolctl import threadpool_limits

from graphnet.runtime import contention, threads


@contextmanager
def no_thread_choice(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For the block: no thread count chosen yet in this process (no explicit count, no
    $GRAPHNET_THREADS, no governor); graphnet's record and the BLAS limits restored after."""
    monkeypatch.setattr(threads, "STATE", dataclasses.replace(threads.STATE, explicit=None, settled=False,
                                                              settled_count=None, current=None))
    monkeypatch.setattr(contention, "_governor", [])
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    with threadpool_limits(limits=None):  # restores the limits on exit
        yield
