"""Every registered op, table-driven: a tiny network containing it, checked
against the NumPy reference interpreter (forward, eval and train mode) and
against central differences (float64 gradcheck, relative error < 1e-6), with
and without the fusion passes.

`OP_CASES` must have an entry for every op in `graphnet.ops.OPS`: registering
a new op without a case here fails `test_every_registered_op_has_cases`.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphnet as gn
from graphnet.gradcheck import check_gradients
from graphnet.ops import OPS


import reference  # tests/ helpers, on sys.path via conftest.py
from zoo import randomize

GRAD_TOL = 1e-6


# ---- the case table ---------------------------------------------------------------------------


def affine(node_id, src, units, **fields):
    return {"id": node_id, "op": "affine", "inputs": [src], "units": units, **fields}


def node(node_id, op, *inputs, **fields):
    return {"id": node_id, "op": op, "inputs": list(inputs), **fields}


def network(nodes, *, head_from=None, loss="softmax_cross_entropy", input_shape=(4,), classes=3,
            outputs=None, l2=0.0):
    """x -> nodes -> head (affine, `classes` units) -> loss. `head_from` defaults to the last node."""
    nodes = list(nodes)
    src = head_from or (nodes[-1]["id"] if nodes else "x")
    nodes.append(affine("head", src, classes))
    if loss == "cross_entropy":
        nodes.append(node("probs", "softmax", "head"))
        nodes.append(node("loss", "cross_entropy", "probs", "y"))
    else:
        nodes.append(node("loss", loss, "head", "y"))
    float_targets = loss in ("mse", "sigmoid_binary_cross_entropy")
    labels = {"y": {"shape": [classes]}} if float_targets else {"y": {"classes": classes}}
    return {"name": "case", "inputs": {"x": {"shape": list(input_shape)}}, "labels": labels, "nodes": nodes,
            "outputs": outputs or ["head"], "loss": "loss", "l2": l2}


def _affine_cases():
    cases = {}
    for bias in (True, False):
        for activation in (None, "identity", "relu", "leaky_relu", "sigmoid", "tanh"):
            fields = {"bias": bias}
            if activation:
                fields["activation"] = activation
            if activation == "leaky_relu":
                fields["alpha"] = 0.2
            cases[f"bias={bias}-act={activation}"] = network([affine("fc", "x", 5, **fields)])
    cases["2d-input"] = network([affine("fc", "x", 5, activation="tanh")], input_shape=(2, 3))
    cases["l2"] = network([affine("fc", "x", 5, activation="relu")], l2=0.05)
    return cases


def _activation_cases(op, **fields):
    return {
        "fused-into-affine": network([affine("fc", "x", 5), node("act", op, "fc", **fields)]),
        "standalone-after-add": network([affine("fc1", "x", 5), affine("fc2", "x", 5),
                                         node("sum", "add", "fc1", "fc2"), node("act", op, "sum", **fields)]),
        "affine-output-read-twice": network([affine("fc", "x", 5), node("act", op, "fc", **fields),
                                             node("sum", "add", "act", "fc")]),
        "on-the-input": network([node("act", op, "x", **fields), affine("fc", "act", 5)]),
    }


OP_CASES: dict[str, dict[str, dict]] = {
    "affine": _affine_cases(),
    "relu": _activation_cases("relu"),
    "leaky_relu": {**_activation_cases("leaky_relu", alpha=0.3),
                   "fused-alpha-0.5": network([affine("fc", "x", 5), node("act", "leaky_relu", "fc", alpha=0.5)])},
    "sigmoid": _activation_cases("sigmoid"),
    "tanh": _activation_cases("tanh"),
    "identity": {
        "after-affine": network([affine("fc", "x", 5), node("same", "identity", "fc")]),
        "of-the-input": network([node("same", "identity", "x"), affine("fc", "same", 5, activation="relu")]),
    },
    "softmax": {
        "into-cross-entropy-fused": network([affine("fc", "x", 5, activation="tanh")], loss="cross_entropy"),
        "into-cross-entropy-also-an-output": network([affine("fc", "x", 5, activation="tanh")],
                                                     loss="cross_entropy", outputs=["head", "probs"]),
        "feeds-an-affine": network([affine("fc", "x", 5), node("p", "softmax", "fc")]),
        "feeds-mse": network([affine("fc", "x", 5), node("p", "softmax", "fc"), affine("fc2", "p", 3),
                              node("q", "softmax", "fc2")], head_from="q", loss="mse"),
    },
    "batchnorm": {
        "affine-bn-relu": network([affine("fc", "x", 5, bias=False), node("bn", "batchnorm", "fc"),
                                   node("h", "relu", "bn")]),
        "momentum-0.5-eps": network([affine("fc", "x", 5, bias=False),
                                     node("bn", "batchnorm", "fc", momentum=0.5, eps=1e-3)]),
        "bn-read-twice": network([affine("fc", "x", 5), node("bn", "batchnorm", "fc"),
                                  node("sum", "add", "bn", "fc")]),
    },
    "layernorm": {
        "affine-ln-tanh": network([affine("fc", "x", 5), node("ln", "layernorm", "fc"), node("h", "tanh", "ln")]),
        "eps-ln-read-twice": network([affine("fc", "x", 5), node("ln", "layernorm", "fc", eps=1e-3),
                                      node("sum", "add", "ln", "fc")]),
    },
    "dropout": {
        "rate-0.3": network([affine("fc", "x", 6, activation="relu"), node("drop", "dropout", "fc", rate=0.3)]),
        "rate-0": network([affine("fc", "x", 6, activation="relu"), node("drop", "dropout", "fc", rate=0.0)]),
        "between-relu-and-affine-unfused": network([affine("fc", "x", 6), node("h", "relu", "fc"),
                                                    node("drop", "dropout", "h", rate=0.5),
                                                    affine("fc2", "drop", 4, activation="sigmoid")]),
    },
    "flatten": {
        "2d-input": network([node("flat", "flatten", "x"), affine("fc", "flat", 4, activation="relu")],
                            input_shape=(2, 3)),
    },
    "add": {
        "value-read-twice": network([affine("fc", "x", 5), node("sum", "add", "fc", "fc")]),
        "value-read-three-times": network([affine("fc", "x", 5), node("sum", "add", "fc", "fc", "fc")]),
        "three-inputs": network([affine("a", "x", 5), affine("b", "x", 5, activation="tanh"),
                                 affine("c", "a", 5), node("sum", "add", "a", "b", "c")]),
        "residual": network([affine("stem", "x", 5, activation="relu"), affine("f1", "stem", 5, activation="relu"),
                             affine("f2", "f1", 5), node("sum", "add", "stem", "f2"), node("out", "relu", "sum")]),
    },
    "concat": {
        "two-branches": network([affine("a", "x", 3, activation="relu"), affine("b", "x", 2, activation="tanh"),
                                 node("cat", "concat", "a", "b")]),
        "value-twice": network([affine("a", "x", 3), node("cat", "concat", "a", "a", "x")]),
    },
    "softmax_cross_entropy": {"plain": network([affine("fc", "x", 5, activation="relu")])},
    "cross_entropy": {
        "fused": network([affine("fc", "x", 5, activation="relu")], loss="cross_entropy"),
        "unfused-probs-output": network([affine("fc", "x", 5)], loss="cross_entropy", outputs=["probs", "head"]),
    },
    "svm": {"plain": network([affine("fc", "x", 5, activation="relu")], loss="svm")},
    "mse": {"plain": network([affine("fc", "x", 5, activation="tanh")], loss="mse")},
    "sigmoid_binary_cross_entropy": {
        "plain": network([affine("fc", "x", 5, activation="relu")], loss="sigmoid_binary_cross_entropy")},
}

CASES = [(op, name, doc) for op, cases in OP_CASES.items() for name, doc in cases.items()]
CASE_IDS = [f"{op}-{name}" for op, name, _ in CASES]


def compile_case(doc, *, fuse=True, seed=0, batch_size=8, dtype="float64", **options):
    return gn.compile(gn.parse_network(doc), batch_size=batch_size, dtype=dtype, seed=seed, fuse=fuse, **options)


# ---- the table covers the registry -----------------------------------------------------------


def test_every_registered_op_has_cases():
    missing = sorted(set(OPS) - set(OP_CASES))
    assert not missing, f"ops without a test case in tests/test_ops.py OP_CASES: {missing}"
    unknown = sorted(set(OP_CASES) - set(OPS))
    assert not unknown, f"OP_CASES names ops that are not registered: {unknown}"


@pytest.mark.parametrize("op, name, doc", CASES, ids=CASE_IDS)
def test_case_contains_its_op(op, name, doc):
    spec = gn.parse_network(doc)
    assert op in {n.op for n in spec.nodes}
    record = OPS[op]
    assert record.forward is not None and record.backward is not None, f"op '{op}' lacks compiler hooks"


# ---- against the reference interpreter --------------------------------------------------------


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("op, name, doc", CASES, ids=CASE_IDS)
def test_forward_and_loss_match_reference(op, name, doc, fuse):
    net = compile_case(doc, fuse=fuse)
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
    np.testing.assert_allclose(net.train_step(inputs, labels), train_loss, rtol=1e-10, atol=1e-12)
    for key, value in new_state.items():
        np.testing.assert_allclose(net.state[key], value, rtol=1e-10, atol=1e-12, err_msg=key)
    # the dropout generator advanced exactly as far as the reference drew from it
    assert net.dropout_rng.bit_generator.state == rng.bit_generator.state


# ---- gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("op, name, doc", CASES, ids=CASE_IDS)
def test_gradcheck(op, name, doc, fuse):
    net = compile_case(doc, fuse=fuse)
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
        net = compile_case(OP_CASES[op][case])
        decisions = net.fusion_decisions(kind)
        assert decisions and all(d.fired == fired for d in decisions), (op, case, kind, decisions)
