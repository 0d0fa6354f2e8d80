"""A caller's arrays as a plan takes them (graphnet.compiler.batch_checks): numeric arrays
converted to the plan's dtype, class labels to int64, everything else refused
with a message saying what the array holds."""
from __future__ import annotations

import numpy as np
import pytest

from graphnet import PlanError
from graphnet.compiler.batch_checks import as_class_labels, as_dtype, check_batch_labels
from graphnet.ops.base import Value

F32 = np.dtype(np.float32)


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint16, np.int64, np.float16, np.float64])
def test_numeric_arrays_are_converted_to_a_copy_in_the_plan_dtype(dtype):
    X = np.arange(6).reshape(2, 3).astype(dtype)
    converted = as_dtype("input 'x'", X, F32)
    assert converted.dtype == F32 and not np.shares_memory(converted, X)
    np.testing.assert_array_equal(converted, X.astype(np.float64))


def test_arrays_already_in_the_dtype_and_non_arrays_are_returned_as_given():
    X = np.zeros((2, 3), F32)
    assert as_dtype("input 'x'", X, F32) is X
    rows = [[1.0, 2.0]]
    assert as_dtype("input 'x'", rows, F32) is rows


@pytest.mark.parametrize("X, message", [
    (np.array([["a", "b"]]), "input 'x': expected numbers (float32), got an array of dtype <U1 (strings)"),
    (np.array([[1 + 2j]]), "(complex numbers)"),
    (np.array([[1e300]]), "input 'x': 1e+300 does not fit in float32"),
])
def test_what_cannot_be_converted_is_refused_saying_what_it_holds(X, message):
    with pytest.raises(PlanError) as error:
        as_dtype("input 'x'", X, F32)
    assert message in str(error.value)


def test_class_labels_of_any_integer_dtype_become_int64_and_floats_are_refused():
    y = np.array([0, 2, 1], np.uint8)
    labels = as_class_labels("y", y)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 2, 1]
    with pytest.raises(PlanError, match=r"labels 'y': class labels must be integers, got float64 \(if they"):
        as_class_labels("y", y.astype(np.float64))


@pytest.mark.parametrize("y, value, message", [
    ([0, 1], Value((), "classes", 3), "labels 'y': expected an array, got list"),
    (np.zeros(3, np.int64), Value((), "classes", 3), "expected an int64 array of shape (2,), got int64 (3,)"),
    (np.zeros((2, 2), np.int64)[:, 0], Value((), "classes", 3), "expected a C-contiguous array"),
    (np.zeros((2, 4), F32), Value((3,)), "targets 'y': expected a C-contiguous float32 array of shape (2, 3)"),
])
def test_labels_that_do_not_fit_the_loss_are_named_with_what_was_expected(y, value, message):
    with pytest.raises(PlanError) as error:
        check_batch_labels("y", y, value, 2, F32)
    assert message in str(error.value)
