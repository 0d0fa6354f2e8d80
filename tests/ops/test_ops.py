"""Every registered op, table-driven: each example network of its record
(`OpRecord.examples`), checked against the NumPy reference interpreter (the
records' reference forwards; forward, eval and train mode) and against central
differences (float64 gradcheck, relative error < 1e-6), with and without the
fusion passes, on every kernel backend.

Registering an op without a reference forward or without an example fails
`test_every_registered_op_has_a_reference_and_examples`.
"""
from __future__ import annotations

import numpy as np
import pytest
from graphnet.kernels import BACKEND_NAMES

import graphnet as gn
from graphnet.model.gradcheck import check_gradients
from graphnet.ops import OPS

from tests._support import reference
from tests._support.zoo import randomize

GRAD_TOL = 1e-6
BACKENDS = BACKEND_NAMES  # numba is a dependency: its absence fails here, not skips


# ---- the case table: the registry's examples -------------------------------------------------

CASES = [(op, name, example.network()) for op, record in OPS.items() for name, example in record.examples.items()]
CASE_IDS = [f"{op}-{name}" for op, name, _ in CASES]


def compile_case(doc, *, fuse=True, seed=0, batch_size=8, dtype="float64", **options):
    return gn.compile(gn.parse_network(doc), batch_size=batch_size, dtype=dtype, seed=seed, fuse=fuse, **options)


def example_doc(op: str, case: str) -> dict:
    return OPS[op].examples[case].network()


# ---- the table covers the registry -----------------------------------------------------------


def test_every_registered_op_has_a_reference_and_examples():
    no_reference = sorted(op for op, record in OPS.items() if record.reference is None)
    assert not no_reference, f"ops without a reference forward (OpRecord.reference): {no_reference}"
    no_examples = sorted(op for op, record in OPS.items() if not record.examples)
    assert not no_examples, f"ops without an example network (OpRecord.examples): {no_examples}"


def test_the_table_runs_every_example_of_every_op():
    assert {op for op, _, _ in CASES} == set(OPS)
    assert len(CASES) == sum(len(record.examples) for record in OPS.values())


def test_one_set_of_activation_codes():
    """The kernels' codes are the only ones: ops use them, affine accepts exactly their names."""
    from typing import get_args

    from graphnet.kernels import codes

    import graphnet.ops as ops
    from graphnet.ops.affine import Affine

    assert ops.ACTIVATION_CODES is codes.ACTIVATION_CODES
    assert not hasattr(ops.base, "ACTIVATION_CODES") or ops.base.ACTIVATION_CODES is codes.ACTIVATION_CODES
    (activation, _none) = get_args(Affine.model_fields["activation"].annotation)
    assert get_args(activation) == tuple(codes.ACTIVATION_CODES)


def test_op_records_have_no_unread_family_field():
    from dataclasses import fields

    from graphnet.ops import OpRecord

    assert "family" not in {f.name for f in fields(OpRecord)}


@pytest.mark.parametrize("op, name, doc", CASES, ids=CASE_IDS)
def test_case_contains_its_op(op, name, doc):
    spec = gn.parse_network(doc)
    assert op in {n.op for n in spec.nodes}
    record = OPS[op]
    assert record.forward is not None and record.backward is not None, f"op '{op}' lacks compiler hooks"


# ---- against the reference interpreter --------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("op, name, doc", CASES, ids=CASE_IDS)
def test_forward_and_loss_match_reference(op, name, doc, fuse, backend):
    net = compile_case(doc, fuse=fuse, backend=backend)
    randomize(net)
    spec = net.spec
    inputs, labels = reference.random_batch(spec, 5, seed=3)
    params = {k: net.params[k].copy() for k in net.params}
    state = {k: net.state[k].copy() for k in net.state}

    values, loss, _ = reference.run_reference(spec, params, state, inputs, labels, mode="eval")
    for output in spec.outputs:
        np.testing.assert_allclose(net.forward(inputs, output=output), values[output], rtol=1e-10, atol=1e-12,
                                   err_msg=f"output {output}")
    np.testing.assert_allclose(net.evaluate_loss(inputs, labels, mode="eval"), loss, rtol=1e-10, atol=1e-12)

    rng = np.random.default_rng()
    rng.bit_generator.state = net.dropout_rng.bit_generator.state
    _, train_loss, new_state = reference.run_reference(spec, params, state, inputs, labels, mode="train", rng=rng)
    np.testing.assert_allclose(net.step(inputs, labels), train_loss, rtol=1e-10, atol=1e-12)
    for key, value in new_state.items():
        np.testing.assert_allclose(net.state[key], value, rtol=1e-10, atol=1e-12, err_msg=key)
    # the dropout generator advanced exactly as far as the reference drew from it
    assert net.dropout_rng.bit_generator.state == rng.bit_generator.state


# ---- gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("op, name, doc", CASES, ids=CASE_IDS)
def test_gradcheck(op, name, doc, fuse, backend):
    net = compile_case(doc, fuse=fuse, backend=backend)
    randomize(net)
    inputs, labels = reference.random_batch(net.spec, 6, seed=4)
    results = check_gradients(net, inputs, labels, entries=None)
    assert {r.name for r in results} == set(net.params)
    for result in results:
        assert result.rel_error < GRAD_TOL, result
        assert np.any(net.grads[result.name] != 0), f"{result.name}: gradient identically zero (vacuous check)"


def test_fused_and_unfused_cases_compile_to_different_plans():
    """The table exercises both paths: the fused cases really fuse, the others really don't."""
    for op, case, kind, fired in [("relu", "fused-into-affine", "train", True),
                                  ("relu", "affine-output-read-twice", "train", False),
                                  ("softmax", "into-cross-entropy-fused", "train", True),
                                  # an output blocks the fusion where outputs are returned, not in training
                                  ("softmax", "into-cross-entropy-also-an-output", "infer", False),
                                  ("softmax", "into-cross-entropy-also-an-output", "train", True)]:
        net = compile_case(example_doc(op, case))
        decisions = net.fusion_decisions(kind)
        assert decisions and all(d.fired == fired for d in decisions), (op, case, kind, decisions)
