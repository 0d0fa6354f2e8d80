"""The spec language: field checks, JSON reading, file loading, round trips,
the JSON Schema, and property tests that nothing but SpecError ever escapes.

Graph-level errors (references, cycles, arity, shapes, labels, loss, outputs)
are in test_validation.py; the nasty-file corpus is tests/fixtures/specs/.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphnet
from graphnet import SpecError
from graphnet.ops import OPS
from graphnet.spec import (
    OPTIMIZERS,
    NetworkSpec,
    RunSpec,
    format_location,
    load,
    parse,
    parse_json,
    parse_network,
    parse_run,
    schema_text,
)

from tests._support.paths import ROOT, SPEC_CORPUS

ZOO_DIR = ROOT / "specs"
ZOO = sorted(p for p in ZOO_DIR.glob("*.json") if p.name != "schema.json")

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])


def small_net() -> dict[str, Any]:
    """x(4) -> fc1 affine(3) -> loss(softmax_cross_entropy, y: 3 classes)."""
    return {
        "inputs": {"x": {"shape": [4]}},
        "labels": {"y": {"classes": 3}},
        "nodes": [
            {"id": "fc1", "op": "affine", "inputs": ["x"], "units": 3},
            {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc1", "y"]},
        ],
        "outputs": ["fc1"],
        "loss": "loss",
    }


def small_run() -> dict[str, Any]:
    return {"network": small_net(), "train": {"data": "spiral"}}


def problems_of(doc: Any, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse(doc, **kwargs)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.problems, "a SpecError must carry at least one problem"
    return error.problems


def assert_problem(problems: list[tuple[str, str]], location: str, *parts: str) -> None:
    """Some problem is at exactly `location` and its message contains every part."""
    at = [message for loc, message in problems if loc == location]
    assert at, f"no problem at {location!r}; got {problems}"
    assert any(all(part in message for part in parts) for message in at), (
        f"no problem at {location!r} mentions {parts}; got {at}")


def with_change(path: tuple[Any, ...], value: Any, doc: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(doc if doc is not None else small_net())
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


# ---- valid documents ------------------------------------------------------------------------


def test_small_net_is_valid_and_infers_values():
    spec = parse(small_net())
    assert isinstance(spec, NetworkSpec)
    assert spec.value("x").shape == (4,)
    assert spec.value("fc1").shape == (3,)
    assert spec.value("loss").shape == ()
    assert spec.value("y").kind == "classes" and spec.value("y").classes == 3


def test_load_takes_a_parsed_document():
    assert isinstance(graphnet.load(small_net()), NetworkSpec)
    assert isinstance(graphnet.load(small_run()), RunSpec)
    with pytest.raises(SpecError, match="missing required field 'inputs'"):
        graphnet.load({"nodes": []})


def test_parse_dispatches_on_network_key():
    assert isinstance(parse(small_run()), RunSpec)
    assert isinstance(parse(small_net()), NetworkSpec)
    assert isinstance(parse(json.dumps(small_run())), RunSpec)
    assert isinstance(parse(json.dumps(small_net()).encode()), NetworkSpec)


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.name)
def test_zoo_spec_loads(path: Path):
    spec = load(path)
    network = spec.network if isinstance(spec, RunSpec) else spec
    assert network.name == path.stem
    assert network.loss is not None and network.value(network.loss).shape == ()


def test_spec_error_is_a_value_error_exported_at_top_level():
    assert graphnet.SpecError is SpecError
    assert issubclass(SpecError, ValueError)
    error = SpecError("plain message", "f.json")
    assert error.problems == [("", "plain message")]
    assert error.lines() == ["f.json: plain message"]
    located = SpecError([("nodes[0].units", "too small"), ("l2", "negative")])
    assert located.lines() == ["nodes[0].units: too small", "l2: negative"]
    assert located.with_source("a.json").lines()[0] == "a.json: nodes[0].units: too small"


# ---- field-level errors: one per kind, with location and message -----------------------------


def test_unknown_field_suggests_the_right_one():
    problems = problems_of(with_change(("nodes", 0, "unitz"), 3))
    assert_problem(problems, "nodes[0].unitz", "unknown field 'unitz'", "did you mean 'units'?", "fc1")


def test_unknown_top_level_field_suggests():
    problems = problems_of(with_change(("ouputs",), ["fc1"]))
    assert_problem(problems, "ouputs", "unknown field 'ouputs'", "did you mean 'outputs'?")


def test_unknown_op_suggests_and_lists_known_ops():
    problems = problems_of(with_change(("nodes", 0, "op"), "afine"))
    assert_problem(problems, "nodes[0]", "unknown op 'afine'", "did you mean 'affine'?", "known:", "relu")


def test_an_op_in_another_case_suggests_the_graphnet_name():
    problems = problems_of(with_change(("nodes", 0, "op"), "ReLU"))
    assert_problem(problems, "nodes[0]", "unknown op 'ReLU'", "did you mean 'relu'?")
    problems = problems_of(with_change(("nodes", 0, "activation"), "ReLU"))
    assert_problem(problems, "nodes[0].activation", "did you mean 'relu'?")


@pytest.mark.parametrize("field, suggested", [("lr", "learning_rate"), ("eps", "epsilon"),
                                              ("learning_rat", "learning_rate")])
def test_an_optimizer_field_of_another_framework_suggests_the_graphnet_name(field, suggested):
    run = small_run()
    run["train"]["optimizer"] = {"rule": "adam", field: 1e-3}
    assert_problem(problems_of(run), f"train.optimizer.{field}", f"unknown field '{field}'",
                   f"did you mean '{suggested}'?")
    with pytest.raises(SpecError, match=f"did you mean '{suggested}'"):
        graphnet.Optimizer(graphnet.compile(small_net(), batch_size=2), "adam", **{field: 1e-3})


def test_missing_op_field():
    doc = small_net()
    del doc["nodes"][0]["op"]
    assert_problem(problems_of(doc), "nodes[0]", "missing 'op'")


def test_missing_required_field():
    doc = small_net()
    del doc["nodes"][0]["units"]
    assert_problem(problems_of(doc), "nodes[0].units", "missing required field 'units'")
    doc = small_net()
    del doc["outputs"]
    assert_problem(problems_of(doc), "outputs", "missing required field 'outputs'")


@pytest.mark.parametrize(
    "path, value, location, part",
    [
        (("nodes", 0, "units"), 0, "nodes[0].units", "greater than or equal to 1"),
        (("nodes", 0, "units"), -5, "nodes[0].units", "greater than or equal to 1"),
        (("nodes", 0, "units"), 2**31, "nodes[0].units", "less than or equal to 2147483647"),
        (("nodes", 0, "std"), 0.0, "nodes[0].std", "greater than 0"),
        (("nodes", 0, "init"), "he", "nodes[0].init", "'he_normal'"),
        (("nodes", 0, "activation"), "gelu", "nodes[0].activation", "'relu'"),
        (("l2",), -1, "l2", "greater than or equal to 0"),
        (("inputs", "x", "shape"), [-4], "inputs.x.shape[0]", "greater than or equal to 1"),
        (("inputs", "x", "shape"), [0], "inputs.x.shape[0]", "greater than or equal to 1"),
        (("inputs", "x", "shape"), [], "inputs.x.shape", "at least 1 item"),
        (("inputs", "x", "shape"), [1, 1, 1, 1, 1], "inputs.x.shape", "at most 4 items"),
        (("labels", "y", "classes"), 1, "labels.y.classes", "greater than or equal to 2"),
        (("labels", "y"), {"classes": 3, "shape": [3]}, "labels.y", "exactly one of"),
        (("labels", "y"), {}, "labels.y", "exactly one of"),
        (("name",), "", "name", "at least 1 character"),
        (("outputs",), [], "outputs", "at least 1 item"),
        (("inputs",), {}, "inputs", "at least 1 item"),
        (("nodes",), [], "nodes", "at least 1 item"),
        (("nodes", 0, "id"), "a.b", "nodes[0].id", "not a valid name"),
        (("nodes", 0, "id"), "1st", "nodes[0].id", "not a valid name"),
        (("nodes", 0, "id"), "fc1\n", "nodes[0].id", "not a valid name"),
        (("nodes", 0, "id"), "x" * 65, "nodes[0].id", "at most 64"),
    ],
)
def test_out_of_range_or_malformed_field(path, value, location, part):
    assert_problem(problems_of(with_change(path, value)), location, part)


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1])
def test_dropout_rate_out_of_range(rate):
    doc = small_net()
    doc["nodes"].insert(1, {"id": "drop", "op": "dropout", "inputs": ["fc1"], "rate": rate})
    doc["nodes"][2]["inputs"][0] = "drop"
    assert_problem(problems_of(doc), "nodes[1].rate", "node 'drop' (dropout)")


@pytest.mark.parametrize(
    "path, value, location",
    [
        (("nodes", 0, "units"), "100", "nodes[0].units"),  # strict: no str -> int coercion
        (("nodes", 0, "units"), 3.0, "nodes[0].units"),
        (("nodes", 0, "units"), True, "nodes[0].units"),
        (("nodes", 0, "units"), None, "nodes[0].units"),
        (("nodes", 0, "bias"), 1, "nodes[0].bias"),
        (("nodes", 0, "bias"), "true", "nodes[0].bias"),
        (("nodes", 0, "inputs"), "x", "nodes[0].inputs"),
        (("nodes", 0, "id"), 7, "nodes[0].id"),
        (("l2",), "0.1", "l2"),
        (("l2",), True, "l2"),
        (("inputs", "x", "shape"), [4.0], "inputs.x.shape[0]"),
        (("inputs", "x", "shape"), "4", "inputs.x.shape"),
        (("inputs", "x"), [4], "inputs.x"),
        (("nodes",), {"fc1": {}}, "nodes"),
        (("nodes", 0), "fc1", "nodes[0]"),
        (("outputs",), "fc1", "outputs"),
        (("loss",), 3, "loss"),
        (("$schema",), 5, "$schema"),
        (("schema_version",), "1", "schema_version"),
        (("schema_version",), True, "schema_version"),  # pydantic's Literal[1] alone accepts true
        (("schema_version",), 1.0, "schema_version"),
        (("schema_version",), 0, "schema_version"),
    ],
)
def test_wrong_type_is_refused(path, value, location):
    problems = problems_of(with_change(path, value))
    assert any(loc == location for loc, _ in problems), problems


def test_python_nan_and_infinity_values_are_refused():
    for value in (float("nan"), float("inf"), float("-inf")):
        assert_problem(problems_of(with_change(("l2",), value)), "l2", "finite")


def test_schema_version_from_the_future():
    for version in (2, 10**30):
        problems = problems_of(with_change(("schema_version",), version))
        assert_problem(problems, "schema_version", f"version {version}", "newer graphnet", "up to 1")
    with pytest.raises(SpecError):
        parse(with_change(("schema_version",), 2, small_run()))


def test_explicit_schema_version_1_is_accepted():
    assert parse(with_change(("schema_version",), 1)).schema_version == 1


def test_field_problems_of_several_nodes_are_reported_together():
    doc = small_net()
    doc["nodes"][0]["units"] = 0
    doc["nodes"][1]["op"] = "sofmax_cross_entropy"
    doc["l2"] = -1
    doc["inputs"]["x"]["shape"] = [0]
    problems = problems_of(doc)
    locations = [loc for loc, _ in problems]
    assert {"nodes[0].units", "nodes[1]", "l2", "inputs.x.shape[0]"} <= set(locations), problems
    assert len(locations) == len(set(locations))
    assert all("\n" not in message for _, message in problems)


def test_invalid_id_explains_what_a_name_may_contain():
    problems = problems_of(with_change(("nodes", 0, "id"), "fc.1"))
    assert_problem(problems, "nodes[0].id", "'fc.1' is not a valid name", "a letter or '_' first", "no dots")
    problems = problems_of(with_change(("inputs",), {"1x": {"shape": [4]}}))
    assert_problem(problems, "inputs.1x", "'1x' is not a valid name")


def test_user_strings_with_control_characters_stay_on_one_line():
    doc = small_net()
    doc["nodes"][0]["id"] = "fc\n1"
    doc["nodes"][0]["un\nits"] = 3
    doc["inputs"]["x\ty"] = {"shape": [4]}
    doc["outputs"] = ["\ud800"]
    problems = problems_of(doc)
    assert len(problems) == 3
    for location, message in problems:
        assert location.isprintable() and message.isprintable(), (location, message)
    assert_problem(problems, "nodes[0].un\\nits", "unknown field 'un\\nits'")
    doc = small_net()
    doc["nodes"][1]["inputs"][0] = "fc1\r\n"
    doc["outputs"] = ["\ud800"]
    assert_problem(problems_of(doc), "nodes[1].inputs[0]", "reads 'fc1\\r\\n', which is not defined")
    text = '{"a\\n": 1, "a\\n": 2}'
    assert problems_of(text) == [("", "duplicate key 'a\\n' in a JSON object")]


# ---- run specs ----------------------------------------------------------------------------------


def test_run_spec_errors_are_located_inside_network_and_train():
    doc = small_run()
    doc["network"]["nodes"][0]["unitz"] = 3
    assert_problem(problems_of(doc), "network.nodes[0].unitz", "did you mean 'units'?")
    doc = small_run()
    doc["train"]["optimizer"] = {"rule": "adm"}
    assert_problem(problems_of(doc), "train.optimizer", "unknown rule 'adm'", "did you mean 'adam'?")
    doc = small_run()
    doc["train"]["optimizer"] = {"rule": "adam", "learnng_rate": 0.1}
    assert_problem(problems_of(doc), "train.optimizer.learnng_rate", "did you mean 'learning_rate'?")
    doc = small_run()
    doc["train"]["schedule"] = {"kind": "step"}
    assert_problem(problems_of(doc), "train.schedule.step_epochs", "missing required field")
    doc = small_run()
    doc["train"]["epochs"] = 0
    assert_problem(problems_of(doc), "train.epochs", "greater than or equal to 1")
    doc = small_run()
    del doc["train"]
    assert_problem(problems_of(doc), "train", "missing required field 'train'")


def test_a_union_member_label_is_not_part_of_the_location():
    doc = small_run()
    doc["train"]["data"] = {"name": "spiral", "val_size": -1, "options": {"points": {"a": 1}}}
    problems = problems_of(doc)
    assert_problem(problems, "train.data.val_size", "greater than or equal to 0")
    assert_problem(problems, "train.data.options.points", "valid integer")
    assert [loc for loc, _ in problems if "val_size" in loc or "options" in loc] == [
        "train.data.val_size", *["train.data.options.points"] * 5]  # bool, int, float, str, list of str


def test_suggestions_come_from_the_model_that_was_validated():
    doc = small_run()
    doc["nme"] = "net"
    assert_problem(problems_of_fn(parse_network, doc), "nme", "did you mean 'name'?")
    doc = small_net()
    doc["trian"] = {}
    assert_problem(problems_of_fn(parse_run, doc), "trian", "did you mean 'train'?")


# ---- JSON text ---------------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused(literal):
    text = json.dumps(small_net()).replace('"loss": "loss"', f'"loss": "loss", "l2": {literal}')
    problems = problems_of(text)
    assert any(literal.lstrip("-") in message and "finite" in message for _, message in problems), problems


def test_huge_number_overflows_to_infinity_and_is_refused():
    text = json.dumps(small_net()).replace('"loss": "loss"', '"loss": "loss", "l2": 1e400')
    assert_problem(problems_of(text), "l2", "finite")
    text = json.dumps(small_net()).replace('"units": 3', '"units": 1e400')
    assert_problem(problems_of(text), "nodes[0].units", "valid integer")


def test_integer_literal_with_too_many_digits():
    text = json.dumps(small_net()).replace('"units": 3', '"units": ' + "9" * 5000)
    problems = problems_of(text)
    assert any("too many digits" in message for _, message in problems), problems
    assert not any("sys.set_int_max_str_digits" in message for _, message in problems)
    text = json.dumps(small_net()).replace('"units": 3', '"units": ' + "9" * 400)
    assert_problem(problems_of(text), "nodes[0].units", "less than or equal to")


def test_duplicate_keys_are_refused():
    text = '{"inputs": {"x": {"shape": [4]}}, "inputs": {"x": {"shape": [5]}}}'
    problems = problems_of(text)
    assert any("duplicate key 'inputs'" in message for _, message in problems), problems
    text = json.dumps(small_net()).replace('"units": 3', '"units": 3, "units": 4')
    assert any("duplicate key 'units'" in message for _, message in problems_of(text))


def test_bad_json_names_line_and_column():
    text = '{\n  "inputs": {"x": {"shape": [4]}},\n  "nodes": [,]\n}'
    problems = problems_of(text)
    assert problems[0][0] == "line 3, column 13", problems
    assert_problem(problems_of("{\n  \"a\": 1,\n}"), "line 3, column 1", "double quotes")
    assert_problem(problems_of(json.dumps(small_net()) + " trailing"), "line 1, column "
                   f"{len(json.dumps(small_net())) + 2}", "Extra data")


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_empty_text_is_bad_json(text):
    problems = problems_of(text)
    assert re.fullmatch(r"line \d+, column \d+", problems[0][0]), problems


def test_bom_prefixed_text_is_refused_with_a_location():
    problems = problems_of("\ufeff" + json.dumps(small_net()))
    assert problems[0][0] == "line 1, column 1" and "BOM" in problems[0][1]


def test_a_bom_prefixed_file_is_read(tmp_path):
    path = tmp_path / "net.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(small_net()).encode("utf-8"))
    assert load(path) == parse(small_net())
    assert parse(path.read_bytes()) == parse(small_net())


YAML_NET = "# a network\ninputs:\n  x:\n    shape: [4]\nnodes:\n  - id: fc1\n"


@pytest.mark.parametrize("name, text", [("net.yaml", YAML_NET), ("net.yml", "{inputs: {x: 1}}"),
                                        ("net.json", YAML_NET), ("net.json", "---\nname: x\n")])
def test_a_yaml_file_is_told_that_specs_are_json(tmp_path, name, text):
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load(tmp_path / name)
    assert info.value.lines() == [f"{tmp_path / name}: specs are JSON, not YAML (convert it: "
                                  + info.value.lines()[0].split("(convert it: ", 1)[1]]
    assert "yaml.safe_load" in info.value.lines()[0]


def test_a_yaml_file_that_is_json_is_read(tmp_path):
    (tmp_path / "net.yaml").write_text(json.dumps(small_net()), encoding="utf-8")
    assert load(tmp_path / "net.yaml") == parse(small_net())


def test_broken_json_is_not_called_yaml():
    problems = problems_of('{"inputs": {"x": {"shape": [4]}},\n "nodes": [}')
    assert re.fullmatch(r"line 2, column \d+", problems[0][0]) and "YAML" not in problems[0][1], problems


def test_deeply_nested_json_is_a_spec_error_not_a_recursion_error():
    depth = 100_000
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        problems = problems_of(text)
        assert any("nested too deeply" in message for _, message in problems), problems


def test_nesting_that_json_accepts_is_still_a_plain_type_error():
    deep: Any = 1
    for _ in range(200):
        deep = [deep]
    assert_problem(problems_of(with_change(("description",), deep)), "description", "valid string")


@pytest.mark.parametrize("doc", [[], [small_net()], "[]", "3", '"network"', "null", "true", 3, None, 2.5])
def test_a_document_that_is_not_an_object(doc):
    problems = problems_of(doc)
    assert any("JSON object" in message for _, message in problems), problems


def test_bytes_that_are_not_utf8():
    problems = problems_of(b'{"name": "caf\xe9"}')
    assert any("UTF-8" in message for _, message in problems), problems


def test_parse_json_keeps_source():
    with pytest.raises(SpecError) as info:
        parse_json("{", source="net.json")
    assert info.value.source == "net.json"
    assert info.value.lines()[0].startswith("net.json: line 1, column 2: ")


def test_parse_network_refuses_a_run_and_parse_run_refuses_a_network():
    assert_problem(problems_of_fn(parse_network, small_run()), "network", "unknown field")
    assert_problem(problems_of_fn(parse_run, small_net()), "network", "missing required field")


def problems_of_fn(fn, doc):
    with pytest.raises(SpecError) as info:
        fn(doc)
    return info.value.problems


# ---- loading files ------------------------------------------------------------------------------


def test_load_missing_file(tmp_path: Path):
    path = tmp_path / "nope.json"
    with pytest.raises(SpecError) as info:
        load(path)
    assert info.value.source == str(path)
    assert "no such file" in str(info.value) and str(path) in str(info.value)


def test_load_folder(tmp_path: Path):
    with pytest.raises(SpecError) as info:
        load(tmp_path)
    assert "folder" in str(info.value) and str(tmp_path) in str(info.value)


def test_load_not_utf8(tmp_path: Path):
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps(small_net()).replace("fc1", "f\u00e91").encode("latin-1"))
    with pytest.raises(SpecError) as info:
        load(path)
    assert "UTF-8" in str(info.value) and str(path) in str(info.value)


def test_load_names_the_file_in_every_problem_line(tmp_path: Path):
    path = tmp_path / "bad.json"
    doc = small_net()
    doc["nodes"][0]["units"] = 0
    doc["l2"] = -1
    path.write_text(json.dumps(doc))
    with pytest.raises(SpecError) as info:
        load(str(path))
    lines = info.value.lines()
    assert len(lines) == 2
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert f"{path}: nodes[0].units: " in lines[0]


def test_load_bad_json_file_names_file_line_and_column(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "name": "x",\n  "inputs": {\n}')
    with pytest.raises(SpecError) as info:
        load(path)
    assert info.value.lines() == [f"{path}: line 4, column 2: Expecting ',' delimiter"]


# ---- round trips ------------------------------------------------------------------------------


def _built_specs() -> list[NetworkSpec]:
    from graphnet.spec.builder import sequential

    return [
        sequential([{"op": "affine", "units": 8, "activation": "relu", "init": "he_normal"},
                    {"op": "dropout", "rate": 0.25}, {"op": "affine", "units": 3}],
                   input_shape=[2, 3], classes=3, l2=1e-3, name="built_cls"),
        sequential([{"op": "flatten"}, {"op": "affine", "units": 2, "bias": False}, {"op": "tanh"}],
                   input_shape=[2, 2], loss="mse"),
        sequential([{"op": "batchnorm", "momentum": 0.5}, {"op": "layernorm", "eps": 1e-3},
                    {"op": "leaky_relu", "alpha": 0.2}], input_shape=[5], loss=None),
    ]


ROUND_TRIP = [pytest.param(lambda p=p: load(p), id=p.name) for p in ZOO] + [
    pytest.param(lambda i=i: _built_specs()[i], id=f"built{i}") for i in range(3)
]


@pytest.mark.parametrize("make", ROUND_TRIP)
def test_round_trip(make):
    spec = make()
    kind = type(spec)
    again = kind.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert parse(spec.model_dump_json()) == spec
    assert parse(spec.model_dump(by_alias=True)) == spec
    canonical = spec.to_json()
    assert parse(canonical) == spec
    assert parse(canonical).to_json() == canonical
    dumped = json.loads(canonical)
    nodes = dumped["network"]["nodes"] if "network" in dumped else dumped["nodes"]
    assert all(list(node)[:2] == ["id", "op"] for node in nodes)


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.name)
def test_schema_reference_survives_round_trip(path: Path):
    spec = load(path)
    assert spec.schema_ref == "./schema.json"
    assert json.loads(spec.to_json())["$schema"] == "./schema.json"
    assert json.loads(spec.model_dump_json())["$schema"] == "./schema.json"


def test_to_json_omits_defaults():
    doc = json.loads(parse(small_net()).to_json())
    assert doc == small_net()


@pytest.mark.parametrize("rule", sorted(OPTIMIZERS))
def test_optimizer_with_only_defaults_keeps_its_rule_in_to_json(rule):
    """Regression: exclude_defaults dropped the union tag ("rule"/"kind"), so to_json() of
    `{"optimizer": {"rule": "sgd"}}` or `{"schedule": {"kind": "cosine"}}` did not parse back."""
    doc = small_run()
    doc["train"]["optimizer"] = {"rule": rule}
    doc["train"]["schedule"] = {"kind": "cosine"}
    spec = parse(doc)
    text = spec.to_json()
    train = json.loads(text)["train"]
    assert train["schedule"] == {"kind": "cosine"}
    if rule != "adam":  # Adam() is the field's default, omitted as a whole
        assert train["optimizer"] == {"rule": rule}
    assert parse(text) == spec


@pytest.mark.parametrize("schedule", [{"kind": "constant", "warmup_epochs": 1.0}, {"kind": "exponential", "decay": 0.9},
                                      {"kind": "step", "step_epochs": 3}, {"kind": "cosine", "min_lr": 1e-5}])
def test_schedules_round_trip(schedule):
    doc = small_run()
    doc["train"]["schedule"] = schedule
    spec = parse(doc)
    assert json.loads(spec.to_json())["train"]["schedule"] == schedule
    assert parse(spec.to_json()) == spec


# ---- JSON Schema -------------------------------------------------------------------------------


def test_schema_file_is_fresh():
    assert (ZOO_DIR / "schema.json").read_text(encoding="utf-8") == schema_text(), (
        "specs/schema.json is stale: run `graphnet schema -o specs/schema.json`")


def test_schema_is_a_draft_2020_12_schema_of_both_spec_kinds():
    schema = json.loads(schema_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"NetworkSpec", "RunSpec"} <= set(schema["$defs"])
    network = schema["$defs"]["NetworkSpec"]
    assert network["additionalProperties"] is False
    assert "$schema" in network["properties"]
    for name, record in OPS.items():
        assert record.model.__name__ in schema["$defs"], name


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.name)
def test_zoo_spec_names_the_schema(path: Path):
    assert json.loads(path.read_text(encoding="utf-8")).get("$schema") == "./schema.json"


@pytest.fixture(scope="module")
def schema_validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.name)
def test_zoo_spec_validates_against_the_schema(path: Path, schema_validator):
    errors = [error.message for error in schema_validator.iter_errors(json.loads(path.read_text()))]
    assert not errors


def test_schema_refuses_unknown_fields_and_wrong_types(schema_validator):
    assert schema_validator.is_valid(small_net())
    assert not schema_validator.is_valid(with_change(("nodes", 0, "unitz"), 3))
    assert not schema_validator.is_valid(with_change(("nodes", 0, "units"), "3"))
    assert not schema_validator.is_valid(with_change(("nodes", 0, "op"), "afine"))


# ---- format_location -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loc, text",
    [
        (("nodes", 3, "affine", "units"), "nodes[3].units"),
        (("nodes", 3, "inputs", 0), "nodes[3].inputs[0]"),
        (("inputs", "x", "shape", 0), "inputs.x.shape[0]"),
        (("network", "nodes", 0, "dropout", "rate"), "network.nodes[0].rate"),
        (("train", "optimizer", "adam", "learning_rate"), "train.optimizer.learning_rate"),
        (("train", "schedule", "step", "step_epochs"), "train.schedule.step_epochs"),
        (("train", "data", "DataSpec", "name"), "train.data.name"),
        (("train", "data", "DataSpec", "val_size", "constrained-int"), "train.data.val_size"),
        (("labels", "y y", "[key]"), "labels.y y"),
        (("l2",), "l2"),
        ((), ""),
    ],
)
def test_format_location(loc, text):
    assert format_location(loc) == text


# ---- property tests: nothing but SpecError escapes ----------------------------------------------

FIELD_NAMES = sorted(
    {"$schema", "schema_version", "name", "description", "inputs", "labels", "nodes", "outputs", "loss", "l2",
     "shape", "classes", "id", "op", "network", "train", "data", "optimizer", "rule", "schedule", "kind"}
    | {name for record in OPS.values() for name in record.model.model_fields}
)
IDS = ["x", "y", "fc1", "h", "loss", "a", "b"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.sampled_from([0, 1, 2, 3, -1, 2**24, 2**24 + 1, 2**63, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(FIELD_NAMES + sorted(OPS) + IDS),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES + IDS), st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=12,
)

node_like = st.fixed_dictionaries(
    {"id": st.sampled_from(IDS) | scalars, "op": st.sampled_from(sorted(OPS)) | scalars,
     "inputs": st.lists(st.sampled_from(IDS), max_size=3) | json_values},
    optional={"units": st.integers(-1, 5) | scalars, "rate": st.floats(-0.5, 1.5) | scalars,
              "activation": st.sampled_from(["relu", "tanh", "gelu"]), "extra": json_values},
)
network_like = st.fixed_dictionaries(
    {"inputs": st.dictionaries(st.sampled_from(IDS), st.fixed_dictionaries(
        {"shape": st.lists(st.integers(-1, 4), max_size=5)}), max_size=2) | json_values,
     "nodes": st.lists(node_like, max_size=6),
     "outputs": st.lists(st.sampled_from(IDS), max_size=3)},
    optional={"labels": st.dictionaries(st.sampled_from(IDS), st.fixed_dictionaries(
        {}, optional={"classes": st.integers(0, 5) | scalars, "shape": st.lists(st.integers(0, 4), max_size=2)}),
        max_size=2),
        "loss": st.sampled_from(IDS) | scalars, "l2": scalars, "schema_version": scalars, "$schema": scalars},
)


def _parse_only_spec_errors(doc: Any) -> None:
    try:
        result = parse(doc)
    except SpecError as error:
        assert error.problems
        for location, message in error.problems:
            assert isinstance(location, str) and isinstance(message, str) and message
        for line in error.lines():
            assert line.isprintable(), repr(line)  # one line, printable on any terminal
        return
    assert isinstance(result, (NetworkSpec, RunSpec))


@pytest.mark.slow
@FUZZ
@given(doc=st.dictionaries(keys, json_values, max_size=8) | json_values)
def test_random_json_values_give_only_spec_errors(doc):
    _parse_only_spec_errors(doc)
    _parse_only_spec_errors(json.dumps(doc))  # NaN / Infinity literals appear here


@pytest.mark.slow
@FUZZ
@given(doc=network_like | st.fixed_dictionaries({"network": network_like, "train": json_values}))
def test_random_network_shaped_documents_give_only_spec_errors(doc):
    _parse_only_spec_errors(doc)
    _parse_only_spec_errors(json.dumps(doc))


@FUZZ
@given(text=st.text(max_size=60) | st.binary(max_size=40))
def test_random_text_gives_only_spec_errors(text):
    _parse_only_spec_errors(text)


ZOO_DOCS = [json.loads(p.read_text(encoding="utf-8")) for p in ZOO]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, prefix + (i,))
    return found


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def mutated_zoo_docs(draw) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(ZOO_DOCS)))
    for _ in range(draw(st.integers(1, 3))):
        network = doc["network"] if "network" in doc else doc
        kind = draw(st.sampled_from(["delete", "retype", "rename", "shuffle", "duplicate", "swap_ref"]))
        if kind in ("delete", "retype"):
            paths = _paths(doc)
            if not paths:
                break
            path = draw(st.sampled_from(paths))
            parent = _at(doc, path[:-1])
            if kind == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(json_values)
        elif not isinstance(network, dict) or not isinstance(network.get("nodes"), list) or not network["nodes"]:
            continue
        elif kind == "rename":
            node = draw(st.sampled_from(network["nodes"]))
            if isinstance(node, dict):
                node["id"] = draw(st.sampled_from(IDS) | st.text(max_size=6))
        elif kind == "shuffle":
            network["nodes"] = draw(st.permutations(network["nodes"]))
        elif kind == "duplicate":
            network["nodes"].insert(draw(st.integers(0, len(network["nodes"]))),
                                    copy.deepcopy(draw(st.sampled_from(network["nodes"]))))
        else:
            node = draw(st.sampled_from(network["nodes"]))
            ids = [n["id"] for n in network["nodes"] if isinstance(n, dict) and "id" in n]
            if isinstance(node, dict) and isinstance(node.get("inputs"), list) and node["inputs"] and ids:
                node["inputs"][draw(st.integers(0, len(node["inputs"]) - 1))] = draw(st.sampled_from(ids))
    return doc


@pytest.mark.filterwarnings("ignore::graphnet.SpecWarning")  # a mutation may leave a dead end
@FUZZ
@given(doc=mutated_zoo_docs())
def test_mutated_zoo_specs_give_only_spec_errors(doc):
    _parse_only_spec_errors(doc)
    _parse_only_spec_errors(json.dumps(doc))


@FUZZ
@given(doc=st.sampled_from(ZOO_DOCS), seed=st.randoms())
def test_shuffling_zoo_nodes_keeps_them_valid(doc, seed):
    doc = copy.deepcopy(doc)
    network = doc["network"] if "network" in doc else doc
    original = parse(copy.deepcopy(doc))
    seed.shuffle(network["nodes"])
    shuffled = parse(doc)
    a = original.network if isinstance(original, RunSpec) else original
    b = shuffled.network if isinstance(shuffled, RunSpec) else shuffled
    for node in a.nodes:
        assert b.value(node.id) == a.value(node.id)


# ---- property tests: random valid networks validate and round-trip -----------------------------

ELEMENTWISE = ["relu", "leaky_relu", "sigmoid", "tanh", "identity", "dropout"]
VECTOR_ONLY = ["softmax", "batchnorm", "layernorm"]


@st.composite
def valid_networks(draw) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """A random valid chain-or-branch network and the shape of every value."""
    shapes: dict[str, tuple[int, ...]] = {}
    inputs = {}
    for k in range(draw(st.integers(1, 2))):
        shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
        inputs[f"in{k}"] = {"shape": list(shape)}
        shapes[f"in{k}"] = shape
    nodes = []
    for i in range(draw(st.integers(1, 12))):
        node_id = f"n{i}"
        names = sorted(shapes)
        vectors = [n for n in names if len(shapes[n]) == 1]
        op = draw(st.sampled_from(["affine", "flatten", "add", "concat", *ELEMENTWISE, *VECTOR_ONLY]))
        source = draw(st.sampled_from(names))
        node: dict[str, Any] = {"id": node_id, "op": op, "inputs": [source]}
        if op == "affine":
            node["units"] = draw(st.integers(1, 6))
            if draw(st.booleans()):
                node["activation"] = draw(st.sampled_from(["relu", "tanh", "sigmoid", "leaky_relu", "identity"]))
            if draw(st.booleans()):
                node["init"] = draw(st.sampled_from(["he_normal", "xavier_uniform", "normal", "zeros"]))
            if draw(st.booleans()):
                node["bias"] = False
            shape = (node["units"],)
        elif op == "flatten":
            shape = (shapes[source][0] if len(shapes[source]) == 1 else _prod(shapes[source]),)
        elif op == "add":
            same = [n for n in names if shapes[n] == shapes[source]]
            node["inputs"] = [source] + draw(st.lists(st.sampled_from(same), min_size=1, max_size=2))
            shape = shapes[source]
        elif op == "concat":
            if not vectors:
                continue
            node["inputs"] = draw(st.lists(st.sampled_from(vectors), min_size=2, max_size=3))
            shape = (sum(shapes[n][0] for n in node["inputs"]),)
        elif op in VECTOR_ONLY:
            if not vectors:
                continue
            node["inputs"] = [draw(st.sampled_from(vectors))]
            shape = shapes[node["inputs"][0]]
        else:
            if op == "dropout":
                node["rate"] = draw(st.floats(0, 0.95))
            elif op == "leaky_relu" and draw(st.booleans()):
                node["alpha"] = draw(st.floats(0, 1))
            shape = shapes[source]
        nodes.append(node)
        shapes[node_id] = shape
    if not nodes:
        nodes.append({"id": "n_last", "op": "identity", "inputs": ["in0"]})
        shapes["n_last"] = shapes["in0"]
    last = nodes[-1]["id"]
    doc: dict[str, Any] = {"name": "random", "inputs": inputs, "nodes": nodes, "outputs": [last]}
    loss = draw(st.sampled_from([None, "softmax_cross_entropy", "svm", "cross_entropy", "mse",
                                 "sigmoid_binary_cross_entropy"]))
    if loss in ("softmax_cross_entropy", "svm", "cross_entropy"):
        if len(shapes[last]) == 1 and shapes[last][0] >= 2:
            doc["labels"] = {"y": {"classes": shapes[last][0]}}
        else:
            loss = None
    elif loss is not None:
        doc["labels"] = {"t": {"shape": list(shapes[last])}}
    if loss is not None:
        nodes.append({"id": "the_loss", "op": loss, "inputs": [last, next(iter(doc["labels"]))]})
        doc["loss"] = "the_loss"
        shapes["the_loss"] = ()
    others = [n["id"] for n in nodes if n["id"] not in (last, "the_loss")]
    if others:
        doc["outputs"] += draw(st.lists(st.sampled_from(others), max_size=2, unique=True))
    if draw(st.booleans()):
        doc["l2"] = draw(st.floats(0, 1))
    doc["nodes"] = draw(st.permutations(nodes))
    return doc, shapes


def _prod(shape: tuple[int, ...]) -> int:
    result = 1
    for n in shape:
        result *= n
    return result


@pytest.mark.filterwarnings("ignore::graphnet.SpecWarning")  # drawn networks may have dead ends
@FUZZ
@given(case=valid_networks())
def test_random_valid_networks_validate_and_round_trip(case):
    doc, shapes = case
    spec = parse_network(copy.deepcopy(doc))
    for name, shape in shapes.items():
        assert spec.value(name).shape == shape, name
    order = [node.id for node in spec.topological_nodes()]
    position = {name: i for i, name in enumerate(order)}
    for node in spec.nodes:
        for ref in node.inputs:
            if ref in position:
                assert position[ref] < position[node.id]
    assert NetworkSpec.model_validate_json(spec.model_dump_json()) == spec
    assert parse(spec.to_json()) == spec
    assert parse(json.dumps(doc)) == spec


# ---- the corpus of nasty files: tests/fixtures/specs/ -----------------------------------------------

# file -> (the location of the first problem, or None where JSON decoding gives none; a message part)
CORPUS_EXPECTED: dict[str, tuple[str | None, str]] = {
    "bad_billion_units.json": ("nodes[0].units", "over the limit of"),  # memory estimate (graphnet.system.limits)
    "bad_comments.json": ("line 1, column 1", "Expecting value"),
    "bad_control_char.json": ("line 2, column 14", "control character"),
    "bad_cycle3.json": ("nodes[0].inputs[1]", "cycle: c -> a -> b -> c"),
    "bad_deep_nesting.json": (None, "nested too deeply"),
    "bad_duplicate_keys.json": (None, "duplicate key 'name'"),
    "bad_emoji_id.json": ("nodes[0].id", "not a valid name"),
    "bad_empty.json": ("line 1, column 1", "Expecting value"),
    "bad_future_version.json": ("schema_version", "version 7 was written by a newer graphnet"),
    "bad_huge_integer.json": (None, "too many digits"),
    "bad_infinity_literal.json": (None, "Infinity is not valid JSON"),
    "bad_json_string_document.json": (None, "a spec is a JSON object, got str"),
    "bad_many_graph_errors.json": ("nodes[1].inputs[1]", "add needs equal shapes"),
    "bad_nan_literal.json": (None, "NaN is not valid JSON"),
    "bad_not_utf8.json": (None, "not UTF-8"),
    "bad_overflow_float.json": ("nodes[0].std", "finite"),
    "bad_run_spec.json": ("network.nodes[0].units", "missing required field 'units'"),
    "bad_self_loop.json": ("nodes[1].inputs[1]", "cycle: h -> h"),
    "bad_single_quotes.json": ("line 2, column 3", "double quotes"),
    "bad_top_level_array.json": (None, "a spec is a JSON object, got list"),
    "bad_trailing_garbage.json": ("line 12, column 1", "Extra data"),
    "bad_truncated.json": ("line 6, column 34", "Unterminated string"),
    "bad_unicode_typo.json": ("nodes[1].inputs[0]", "did you mean 'слой_1'?"),
}
BAD_FILES = sorted(SPEC_CORPUS.glob("bad_*.json"))


def test_every_corpus_file_has_an_expectation():
    assert sorted(p.name for p in BAD_FILES) == sorted(CORPUS_EXPECTED)


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.name)
def test_nasty_file_gives_a_located_spec_error(path: Path):
    try:
        load(path)
    except SpecError as error:
        problems = error.problems
        assert problems and error.source == str(path)
        assert all(line.startswith(f"{path}: ") for line in error.lines())
        location, part = CORPUS_EXPECTED[path.name]
        if location is not None:
            assert_problem(problems, location, part)
        else:
            assert part in problems[0][1], problems
    else:
        pytest.fail(f"{path.name} was accepted")


def test_nasty_file_with_many_graph_errors_reports_them_all():
    with pytest.raises(SpecError) as info:
        load(SPEC_CORPUS / "bad_many_graph_errors.json")
    problems = info.value.problems
    assert [loc for loc, _ in problems] == ["nodes[1].inputs[1]", "nodes[2].inputs[1]", "nodes[4].inputs[1]",
                                            "outputs[1]"]
    assert_problem(problems, "nodes[2].inputs[1]", "concat", "(2, 2)")
    assert_problem(problems, "nodes[4].inputs[1]", "4 scores", "3 classes")
    assert_problem(problems, "outputs[1]", "'fc3' is not a node", "did you mean 'fc2'?")


def test_run_spec_file_reports_network_and_train_problems_together():
    with pytest.raises(SpecError) as info:
        load(SPEC_CORPUS / "bad_run_spec.json")
    problems = info.value.problems
    assert_problem(problems, "network.nodes[0].unitz", "did you mean 'units'?")
    assert_problem(problems, "train.optimizer.learning_rate", "greater than 0")
    assert_problem(problems, "train.epochs", "greater than or equal to 1")


def test_a_bom_prefixed_corpus_file_is_valid():
    assert (SPEC_CORPUS / "ok_bom.json").read_bytes().startswith(b"\xef\xbb\xbf")
    assert load(SPEC_CORPUS / "ok_bom.json").name == "small"


def test_unicode_ids_are_valid():
    spec = load(SPEC_CORPUS / "ok_unicode_ids.json")
    assert spec.value("層2").shape == (3,)
    assert spec.value("_straße-ß").shape == (3,)
    assert parse(spec.to_json()) == spec


def test_a_bare_name_loads_the_zoo_spec_from_any_folder(tmp_path, monkeypatch) -> None:
    from graphnet.spec import zoo_specs

    monkeypatch.chdir(tmp_path)
    assert {"fashion_mlp", "spiral_mlp", "two_layer_net"} <= set(zoo_specs())
    assert load("fashion_mlp").network.name == "fashion_mlp"
    assert load("two_layer_net.json").name == "two_layer_net"
    with pytest.raises(SpecError, match=r"did you mean 'fashion_mlp'\?"):
        load("fashon_mlp")
    (tmp_path / "fashion_mlp.json").write_text("{}")  # a file of that name wins over the zoo
    with pytest.raises(SpecError, match="missing required field"):
        load("fashion_mlp.json")


@pytest.mark.parametrize("path", [p for p in ZOO if '"train"' in p.read_text()], ids=lambda p: p.name)
def test_as_trained_json_spells_out_every_train_setting_and_parses_back(path):
    run = graphnet.load(str(path))
    document = json.loads(run.as_trained_json())
    assert set(document) == {"schema_version", "network", "train"}  # no "$schema"
    assert set(document["train"]) == set(type(run.train).model_fields)
    assert set(document["train"]["optimizer"]) == set(type(run.train.optimizer).model_fields)
    assert set(document["train"]["schedule"]) == set(type(run.train.schedule).model_fields)
    assert graphnet.parse_run(run.as_trained_json()) == run.model_copy(update={"schema_ref": None})
