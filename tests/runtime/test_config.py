"""graphnet.runtime.config: the settings networks are compiled with (gn.set_config, gn.config_context)
and the Target gn.compile resolves from them."""
from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from graphnet.kernels import get_backend

import graphnet as gn
from graphnet.ops.target import KernelSwitches
from graphnet.runtime.config import resolve_target


@pytest.fixture
def settings_restored():
    before = gn.get_config()
    yield
    gn.set_config(**dataclasses.asdict(before))


def test_the_defaults_are_the_measured_ones():
    assert gn.get_config() == KernelSwitches()
    assert (gn.get_config().small_batch_rows, gn.get_config().packed_parallel) == (0, False)


def test_a_context_overrides_inside_its_block_only():
    with gn.config_context(small_batch_rows=2, packed_parallel=True) as inside:
        assert inside == gn.get_config() == KernelSwitches(small_batch_rows=2, packed_parallel=True)
        with gn.config_context(small_batch_rows=5):
            assert (gn.get_config().small_batch_rows, gn.get_config().packed_parallel) == (5, True)
        assert gn.get_config().small_batch_rows == 2
    assert gn.get_config() == KernelSwitches()


def test_a_context_is_left_as_it_was_when_its_block_raises():
    with pytest.raises(RuntimeError):
        with gn.config_context(packed_max_rows=0):
            raise RuntimeError
    assert gn.get_config() == KernelSwitches()


def test_set_config_is_for_the_process_and_a_context_wins_inside_its_block(settings_restored):
    seen = []
    with gn.config_context(small_batch_rows=3):
        gn.set_config(small_batch_rows=1, packed_max_rows=7)
        assert (gn.get_config().small_batch_rows, gn.get_config().packed_max_rows) == (3, 7)
        thread = threading.Thread(target=lambda: seen.append(gn.get_config()))  # another thread: not this block
        thread.start()
        thread.join()
    assert (seen[0].small_batch_rows, seen[0].packed_max_rows) == (1, 7)
    assert (gn.get_config().small_batch_rows, gn.get_config().packed_max_rows) == (1, 7)


def test_an_unknown_setting_is_named_with_a_suggestion(settings_restored):
    message = r"unknown setting 'small_batch_row'; did you mean 'small_batch_rows'\? \(settings: small_batch_rows, "
    with pytest.raises(gn.ConfigError, match=message):
        gn.set_config(small_batch_row=1)
    with pytest.raises(gn.ConfigError, match=message):
        with gn.config_context(small_batch_row=1):
            pass
    assert gn.get_config() == KernelSwitches()


@pytest.mark.parametrize("name, value, message", [
    ("small_batch_rows", -1, "small_batch_rows must be an integer >= 0, got -1"),
    ("packed_max_rows", 2.5, "packed_max_rows must be an integer >= 0, got 2.5"),
    ("small_work", True, "small_work must be an integer >= 0, got True"),
    ("packed_parallel", 1, "packed_parallel must be True or False, got 1"),
])
def test_a_setting_out_of_range_is_refused_before_anything_changes(name, value, message, settings_restored):
    with pytest.raises(gn.ConfigError, match=message):
        gn.set_config(**{name: value})
    with pytest.raises(gn.ConfigError, match=message):
        with gn.config_context(**{name: value}):
            pass
    assert gn.get_config() == KernelSwitches()


def test_compile_resolves_the_target_once_from_the_settings_in_effect():
    spec = gn.sequential([{"op": "affine", "units": 3}], input_shape=[4], classes=3)
    with gn.config_context(small_batch_rows=1):
        net = gn.compile(spec, batch_size=2, dtype="float64", backend="numpy")
    assert net.target.switches.small_batch_rows == 1 and gn.get_config().small_batch_rows == 0
    assert "affine_small_forward up to" in net.describe("infer")  # built after the block: its own settings
    assert (net.target.dtype, net.target.backend) == (np.dtype("float64"), "numpy")


def test_resolve_target_takes_the_gemm_and_the_threads_the_process_is_set_up_for():
    from graphnet.runtime.blas import find_gemm
    from graphnet.runtime.threads import planned_threads

    target = resolve_target(get_backend("numpy"), np.float32)
    assert target.gemm is find_gemm(np.float32) and target.threads == planned_threads()
    assert target.live_threads() >= 1 and target.helper is not None


def test_a_target_given_to_compile_must_agree_with_dtype_and_backend():
    spec = gn.sequential([{"op": "affine", "units": 3}], input_shape=[4], classes=3)
    target = gn.compile(spec, batch_size=2, dtype="float64", backend="numpy").target
    assert gn.compile(spec, batch_size=2, target=target).dtype == np.float64
    with pytest.raises(ValueError, match=r"dtype float32 disagrees with the target \(float64, numpy kernels\)"):
        gn.compile(spec, batch_size=2, dtype="float32", target=target)
    with pytest.raises(ValueError, match=r"backend numba disagrees with the target"):
        gn.compile(spec, batch_size=2, backend="numba", target=target)
