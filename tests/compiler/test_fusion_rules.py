"""graphnet.compiler.fusion_rules: the fusion table is derived from the op registry, and every
rule it holds can fire (its ops exist, an epilogue's fields fit its producer)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, get_args

import pytest
from graphnet.kernels.codes import ACTIVATION_CODES

import graphnet as gn
from graphnet.compiler import fuse
from graphnet.compiler.fusion_rules import FUSION_RULES, FusionRule
from graphnet.compiler.graph import build_graph
from graphnet.ops import OPS, NodeModel
from graphnet.ops.examples import affine, node

EPILOGUES = [rule for rule in FUSION_RULES.values() if rule.kind == "epilogue"]


def literal_values(annotation: Any) -> set[Any]:
    """Every value of the Literals inside an annotation (`Literal["a", "b"] | None` -> {"a", "b", None})."""
    args = get_args(annotation)
    if not args:
        return {None} if annotation is type(None) else set()
    values: set[Any] = set()
    for arg in args:
        values |= literal_values(arg) if get_args(arg) or arg is type(None) else {arg}
    return values


def test_every_op_with_an_activation_code_fuses_into_affine():
    coded = {name for name, record in OPS.items() if record.activation_code is not None}
    assert coded == {"relu", "leaky_relu", "sigmoid", "tanh"}
    assert {rule.consumer for rule in EPILOGUES if rule.producer == "affine"} == coded
    for name in coded:
        assert OPS[name].activation_code == ACTIVATION_CODES[name]


@pytest.mark.parametrize("rule", list(FUSION_RULES.values()), ids=lambda rule: f"{rule.producer}->{rule.consumer}")
def test_every_rule_names_registered_ops(rule: FusionRule):
    assert FUSION_RULES[(rule.producer, rule.consumer)] is rule
    assert rule.producer in OPS and rule.consumer in OPS
    if rule.kind == "replace":
        fused = OPS[rule.fused_op]
        assert fused.min_inputs == OPS[rule.consumer].min_inputs and fused.is_loss == OPS[rule.consumer].is_loss


@pytest.mark.parametrize("rule", EPILOGUES, ids=lambda rule: f"{rule.producer}->{rule.consumer}")
def test_an_epilogue_fits_its_producer(rule: FusionRule):
    """The producer's epilogue field accepts the consumer's op, and has a field for
    each of the consumer's own fields (the fused node takes them over)."""
    producer_fields = OPS[rule.producer].model.model_fields
    assert rule.consumer in literal_values(producer_fields[rule.epilogue_field].annotation)
    own = set(OPS[rule.consumer].model.model_fields) - set(NodeModel.model_fields) - {"op"}
    assert own <= set(producer_fields), f"{rule.consumer}'s fields {own} missing on {rule.producer}"


def test_the_compiler_fuses_what_the_table_says(monkeypatch):
    """The fusion pass takes its rule from the table (here a renamed one), not from op names of its own."""
    monkeypatch.setitem(FUSION_RULES, ("affine", "tanh"),
                        replace(FUSION_RULES[("affine", "tanh")], name="affine+tanh (test)"))
    spec = gn.parse_network({
        "inputs": {"x": {"shape": [4]}},
        "nodes": [affine("fc", "x", 3), node("t", "tanh", "fc")], "outputs": ["t"]})
    fused, decisions, renamed = fuse(build_graph(spec))
    assert [(d.rule, d.fired) for d in decisions] == [("affine+tanh (test)", True)]
    assert renamed == {"t": "fc"} and fused.node("fc").spec.activation == "tanh"


def test_pairs_outside_the_table_do_not_fuse(monkeypatch):
    monkeypatch.delitem(FUSION_RULES, ("affine", "relu"))
    spec = gn.parse_network({
        "inputs": {"x": {"shape": [4]}},
        "nodes": [affine("fc", "x", 3), node("h", "relu", "fc")], "outputs": ["h"]})
    fused, decisions, renamed = fuse(build_graph(spec))
    assert decisions == [] and renamed == {} and [n.op for n in fused.nodes] == ["affine", "relu"]
