"""graphnet.gradient_check on functions whose gradients are known in closed form."""
from __future__ import annotations

import random

import numpy as np

from graphnet.gradient_check import (
    central_difference,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)


def test_rel_error():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert abs(rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) - 0.2 / 4.2) < 1e-15
    assert rel_error(np.zeros(2), np.array([0.0, 1e-12])) == 1e-12 / 1e-8  # the 1e-8 floor
    assert rel_error(2.0, 2.0) == 0.0


def test_eval_numerical_gradient_of_a_quadratic_restores_x(capsys):
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    before = x.copy()
    grad = eval_numerical_gradient(lambda x: float(np.sum(x ** 2) + np.sum(x)), x, verbose=True)
    assert rel_error(grad, 2 * before + 1) < 1e-9
    assert np.array_equal(x, before)
    assert capsys.readouterr().out.count("\n") == 6  # one line per entry when verbose


def test_eval_numerical_gradient_perturbs_in_place():
    x = np.arange(4.0)
    seen = []
    eval_numerical_gradient(lambda v: seen.append(v is x) or 0.0, x, verbose=False)
    assert all(seen) and len(seen) == 8


def test_eval_numerical_gradient_array_is_the_vector_jacobian_product():
    x = np.linspace(0.5, 2, 8).reshape(2, 4)
    df = np.linspace(-1, 1, 8).reshape(2, 4)
    grad = eval_numerical_gradient_array(lambda x: x ** 3, x, df)
    assert rel_error(grad, 3 * x ** 2 * df) < 1e-8
    w = np.linspace(-1, 1, 12).reshape(4, 3)
    df2 = np.ones((2, 3))
    grad_w = eval_numerical_gradient_array(lambda w: x @ w, w, df2)
    assert rel_error(grad_w, x.T @ df2) < 1e-8


def test_grad_check_sparse(capsys):
    random.seed(0)
    x = np.linspace(-1, 1, 20).reshape(4, 5)
    errors = grad_check_sparse(lambda x: float(np.sum(np.sin(x))), x, np.cos(x), num_checks=5)
    assert len(errors) == 5 and max(errors) < 1e-8
    assert capsys.readouterr().out.count("relative error") == 5


def test_central_difference_of_a_scalar_and_of_an_array_function_restores_x():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    slope = central_difference(lambda v: float(np.sum(v ** 3)), x, (1, 1), 1e-5)
    assert isinstance(slope, float) and abs(slope - 3 * 3.0 ** 2) < 1e-6
    buffer = np.empty(2)

    def squares_of_first_row(v):  # returns the same buffer each call: the helper must copy
        np.multiply(v[0], v[0], out=buffer)
        return buffer

    column = central_difference(squares_of_first_row, x, (0, 1), 1e-5)
    assert column.shape == (2,) and np.allclose(column, [0.0, 2 * -2.0], atol=1e-8)
    assert np.array_equal(x, before)
