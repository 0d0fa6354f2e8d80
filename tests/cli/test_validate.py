"""The `graphnet validate` and `graphnet schema` commands, in process (main([...])); as real
processes (`python -m graphnet`, the `graphnet` console script): tests/system/cli/test_validate.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import graphnet
from graphnet.cli import main
from graphnet.spec import schema_text

from tests._support.paths import ROOT, SPEC_CORPUS
from tests._support.spec_files import bad_spec

ZOO = sorted(p for p in (ROOT / "specs").glob("*.json") if p.name != "schema.json")


def graph_error_spec(folder: Path) -> Path:
    doc = {
        "inputs": {"x": {"shape": [4]}},
        "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 3},
                  {"id": "h", "op": "relu", "inputs": ["fc_1"]}],
        "outputs": ["h", "nope"],
    }
    path = folder / "graph_error.json"
    path.write_text(json.dumps(doc))
    return path


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- validate, in process --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.name)
def test_validate_zoo_file(capsys, path: Path):
    code, out, err = run_main(capsys, "validate", str(path))
    assert code == 0, err
    assert err == ""
    assert f"{path}: valid network '{path.stem}'" in out
    assert "node" in out and "shape" in out and "params" in out
    assert "parameters; outputs:" in out
    assert "loss:" in out


def test_validate_prints_node_table_and_parameter_count(capsys):
    path = ROOT / "specs" / "two_layer_net.json"
    code, out, _ = run_main(capsys, "validate", str(path))
    assert code == 0
    lines = out.splitlines()
    assert any(line.split()[:2] == ["fc1", "affine"] and "(100,)" in line and "78,500" in line for line in lines)
    assert any(line.split()[:2] == ["h1", "relu"] for line in lines)
    assert "79,510 parameters; outputs: fc2; loss: loss" in out


def test_validate_all_zoo_files_at_once(capsys):
    code, out, err = run_main(capsys, "validate", *map(str, ZOO))
    assert code == 0 and err == ""
    assert out.count("valid network") == len(ZOO)


def test_validate_quiet(capsys):
    code, out, _ = run_main(capsys, "validate", "-q", *map(str, ZOO))
    assert code == 0
    assert out.splitlines() == [f"{path}: valid" for path in ZOO]


def test_validate_bad_file_prints_one_line_per_problem(capsys, tmp_path: Path):
    path = bad_spec(tmp_path)
    code, out, err = run_main(capsys, "validate", str(path))
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2, err  # field errors: the unknown field and l2 (graph checks need valid fields)
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert f"{path}: nodes[0].activaton: " in err and "did you mean 'activation'?" in err
    assert f"{path}: l2: " in err
    assert "Traceback" not in err


def test_validate_graph_errors_are_all_reported(capsys, tmp_path: Path):
    path = graph_error_spec(tmp_path)
    code, _, err = run_main(capsys, "validate", str(path))
    assert code == 1
    assert err.splitlines()[0].startswith(f"{path}: nodes[1].inputs[0]: ")
    assert "did you mean 'fc1'?" in err


def test_validate_several_files_with_one_bad(capsys, tmp_path: Path):
    good1, good2 = ZOO[0], ZOO[-1]
    bad = bad_spec(tmp_path)
    code, out, err = run_main(capsys, "validate", str(good1), str(bad), str(good2))
    assert code == 1
    assert f"{good1}: valid network" in out and f"{good2}: valid network" in out
    assert str(bad) not in out
    assert all(line.startswith(f"{bad}: ") for line in err.splitlines())


@pytest.mark.parametrize("name", ["bad_cycle3.json", "bad_not_utf8.json", "bad_deep_nesting.json",
                                  "bad_nan_literal.json", "bad_empty.json", "bad_future_version.json"])
def test_validate_nasty_files(capsys, name: str):
    path = SPEC_CORPUS / name
    code, out, err = run_main(capsys, "validate", str(path))
    assert code == 1 and out == ""
    assert err and all(line.startswith(f"{path}: ") for line in err.splitlines())
    assert "Traceback" not in err and "internal error" not in err


def test_validate_reads_a_bom_prefixed_file(capsys):
    code, out, err = run_main(capsys, "validate", "-q", str(SPEC_CORPUS / "ok_bom.json"))
    assert (code, out, err) == (0, f"{SPEC_CORPUS / 'ok_bom.json'}: valid\n", "")


def test_validate_a_yaml_file_says_specs_are_json(capsys, tmp_path: Path):
    path = tmp_path / "net.yaml"
    path.write_text("inputs:\n  x:\n    shape: [4]\n", encoding="utf-8")
    code, out, err = run_main(capsys, "validate", str(path))
    assert code == 1 and out == ""
    assert err.startswith(f"{path}: specs are JSON, not YAML (") and len(err.splitlines()) == 1, err


def test_validate_prints_an_unconnected_node_as_a_warning_line(capsys, tmp_path: Path):
    path = tmp_path / "stray.json"
    path.write_text(json.dumps({
        "inputs": {"x": {"shape": [2]}}, "labels": {"y": {"classes": 3}},
        "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": 3},
                  {"id": "stray", "op": "relu", "inputs": ["fc"]},
                  {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc", "y"]}],
        "outputs": ["fc"], "loss": "loss"}), encoding="utf-8")
    code, out, err = run_main(capsys, "validate", "-q", str(path))
    assert (code, out) == (0, f"{path}: valid\n")
    assert err == (f"{path}: warning: nodes[1]: node 'stray' (relu) is not connected: its value reaches no output "
                   "and not the loss (remove it, or list it in \"outputs\")\n")


def test_validate_missing_file_and_folder(capsys, tmp_path: Path):
    missing = tmp_path / "missing.json"
    code, _, err = run_main(capsys, "validate", str(missing), str(tmp_path))
    assert code == 1
    assert err.splitlines() == [f"{missing}: no such file", f"{tmp_path}: is a folder, not a spec file"]


def test_validate_without_files_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    assert info.value.code == 2
    assert "usage: graphnet validate" in capsys.readouterr().err


# ---- schema, version, help ----------------------------------------------------------------------


def test_schema_to_stdout(capsys):
    code, out, _ = run_main(capsys, "schema")
    assert code == 0
    assert out == schema_text()
    assert json.loads(out)["title"] == "graphnet spec"


@pytest.mark.parametrize("flag", ["-o", "--out"])
def test_schema_to_file(capsys, tmp_path: Path, flag: str):
    target = tmp_path / "sub" / "schema.json"
    code, out, _ = run_main(capsys, "schema", flag, str(target))
    assert code == 0
    assert target.read_text(encoding="utf-8") == schema_text()
    assert str(target) in out
    assert not [p for p in target.parent.iterdir() if p.name != "schema.json"]  # no temporary left behind


def test_schema_dash_means_stdout(capsys):
    code, out, _ = run_main(capsys, "schema", "-o", "-")
    assert code == 0 and out == schema_text()


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"graphnet {graphnet.__version__}"


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: graphnet")
    assert "validate" in out and "schema" in out


def test_no_command_prints_usage(capsys):
    code, out, err = run_main(capsys)
    assert code == 2
    assert "usage: graphnet" in out + err
    assert "validate" in out + err


def test_unknown_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["valdate"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
