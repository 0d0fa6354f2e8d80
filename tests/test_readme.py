"""The README's commands are the ones CI runs and the ones that set up a fresh machine (run as child
processes: tests/system/test_readme.py)."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.cli import main
from graphnet.data import DEBIAN_PACKAGES

from tests._support.paths import ROOT
from tests._support.readme import code_blocks, mpi_block, readme_command, section
from tests._support.extras import HAVE_ONNX
from tests._support.task_data import named_classes


VENV = "python3 -m venv .venv && . .venv/bin/activate && "


def test_the_main_job_command_installs_its_data_set_and_trains_in_a_venv():
    command = readme_command("Train a network (the main job)")
    assert f"apt-get install -y {DEBIAN_PACKAGES['fashion-mnist']} python3-venv" in command
    # pip installs into a venv: a stock Debian 12 / Ubuntu 24.04 refuses it outside one
    assert VENV + "pip install -e '.[plot,progress]' && graphnet train specs/fashion_mlp.json" in command
    assert command.index("apt-get install") < command.index(VENV)


def test_the_test_command_uses_the_main_jobs_venv():
    assert readme_command("Run the tests") == VENV + "pip install -e '.[test]' && pytest"


def test_every_pip_install_in_the_readme_runs_in_a_venv():
    for language, block in code_blocks((ROOT / "README.md").read_text()):
        lines = [line for line in block.splitlines() if re.search(r"(^|&& )pip install", line)]
        for line in lines:
            assert "activate" in block[:block.index(line) + line.index("pip install")], (
                f"pip install without a venv: {line}")


def test_the_mpi_block_shows_the_hand_launch_as_root():
    lines = [line.split("#")[0].strip() for line in mpi_block().splitlines()]
    assert "mpiexec -n 2 graphnet train specs/spiral_mlp.json" in lines
    assert "mpiexec --allow-run-as-root -n 2 graphnet train specs/spiral_mlp.json" in lines


def _reproduce_block() -> str:
    readme = (ROOT / "README.md").read_text()
    return next(body for language, body in code_blocks(readme[readme.index("\nReproduce, "):]) if language == "bash")


def test_the_benchmark_reproduce_block_is_commands_a_user_can_paste():
    block = _reproduce_block()
    commands = [line.split("   #")[0].split("  #")[0].strip() for line in block.splitlines()]
    assert commands[0] == VENV + "pip install -e '.[bench,plot,onnx,mpi]'"
    assert "/path/to" not in block and "<" not in block  # no placeholders
    scripts = [re.search(r"python (bench/\w+\.py)", command) for command in commands]
    assert len([s for s in scripts if s]) >= 8
    for found in filter(None, scripts):
        source = (ROOT / found.group(1)).read_text()
        # every script writes into --results DIR (bench-results/ by default) ...
        assert "add_results_option(parser)" in source, found.group(1)
    # ... and no command asks for the tracked results the README's tables come from
    assert "bench/results" not in block


@pytest.mark.slow
def test_the_deploy_section_runs_as_written(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    deploy = section(readme, "Deploy: predict, export, import")
    blocks = code_blocks(deploy[:deploy.index("**ONNX.**")])
    [run_file] = [json.loads(body) for language, body in blocks if language == "json"]
    [commands] = [body for language, body in blocks if language == "" and "graphnet train" in body]
    header = "sepal_length,sepal_width,petal_length,petal_width,species"
    assert header in deploy and "\"options\": {\"label_column\": \"species\"}" in deploy
    # flowers.csv as the text describes it, and new.csv with the feature columns in another order
    X, names = named_classes(150)
    monkeypatch.chdir(tmp_path)
    rows = [",".join([*map(repr, map(float, x)), name]) for x, name in zip(X, names)]
    Path(run_file["train"]["data"]["name"]).write_text(header + "\n" + "\n".join(rows) + "\n")
    Path("flowers.json").write_text(json.dumps(run_file))
    columns = header.split(",")[:4]
    order = [3, 0, 2, 1]
    Path("new.csv").write_text(",".join(columns[j] for j in order) + "\n"
                               + "\n".join(",".join(repr(float(x[j])) for j in order) for x in X[:20]) + "\n")
    for line in commands.splitlines():
        argv = line.split("#")[0].split()
        assert argv[0] == "graphnet"
        capsys.readouterr()
        assert main(argv[1:]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        if "--proba" in argv:
            assert out.splitlines()[0] == "prediction,p_setosa,p_versicolor,p_virginica"
        if argv[1] == "eval":
            assert "setosa" in out and "accuracy" in out
    predicted = Path("predictions.csv").read_text().splitlines()
    assert predicted[0] == "prediction" and predicted[1:] == list(names[:20])
    [python] = [body for language, body in code_blocks(deploy[:deploy.index("**ONNX.**")]) if language == "python"]
    namespace: dict = {}
    exec(compile(python, "README.md (Deploy)", "exec"), namespace)  # runs as written, in the folder above
    assert list(namespace["net"].predict(namespace["X_raw"][:20])) == list(names[:20])
    assert namespace["result"].net.class_names == ("setosa", "versicolor", "virginica")


TABLES = "Tables: text categories, missing cells, a rare class"
NUMBER = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def _shown(line: str) -> re.Pattern:
    """A line of output as the README shows it, every number free to be another (they are one
    run's) and every run of spaces free in width (columns aligned to other numbers)."""
    tokens = re.findall(rf"{NUMBER}| +|[^\d ]+|\d", line)
    return re.compile("".join(NUMBER if re.fullmatch(NUMBER, t) else " *" if t.isspace() else re.escape(t)
                              for t in tokens))


def _matches_in_order(shown: list[str], actual: list[str]) -> list[str]:
    """The shown lines that no actual line matches (after the previous shown line's match)."""
    missing, at = [], 0
    for line in shown:
        found = next((i for i in range(at, len(actual)) if _shown(line).fullmatch(actual[i])), None)
        if found is None:
            missing.append(line)
        else:
            at = found + 1
    return missing


def test_shown_output_lines_match_up_to_their_numbers():
    assert _shown("epoch   1/40  loss 0.3185  val  91.2%  lr 1.00e-02").fullmatch(
        "epoch  12/40  loss 0.2062  val 100.0%  lr 1.00e-02")
    assert not _shown("epoch   1/40  loss 0.3185").fullmatch("epoch   1/40  gain 0.3185")
    assert _matches_in_order(["a 1", "b 2"], ["a 7", "x", "b 3"]) == []
    assert _matches_in_order(["b 2", "a 1"], ["a 7", "b 3"]) == ["a 1"]


@pytest.mark.slow  # ~10 s: trains the walkthrough's table, then evaluates, predicts and exports it
def test_the_tables_section_runs_as_written(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    tables = section(readme, TABLES)
    blocks = code_blocks(tables[:tables.index("### Against scikit-learn")])
    make, onnx_runtime = [body for language, body in blocks if language == "python"]
    [run_file] = [json.loads(body) for language, body in blocks if language == "json"]
    bare = [body for language, body in blocks if language == ""]

    def shown(start: str) -> str:
        [block] = [body for body in bare if body.startswith(start)]
        return block

    monkeypatch.chdir(tmp_path)
    exec(compile(make, "README.md (Tables)", "exec"), {})  # writes adult.csv and more.csv
    assert Path("adult.csv").read_text().startswith(shown("income,") + "\n")  # the file begins as shown
    Path("adult.json").write_text(json.dumps(run_file))
    Path("new.csv").write_text(shown("age,") + "\n")
    said = {}
    for line in shown("graphnet train").splitlines():
        argv = line.split("#")[0].split()
        assert argv[0] == "graphnet"
        if argv[1] == "export" and not HAVE_ONNX:
            continue
        capsys.readouterr()
        assert main(argv[1:]) == 0, capsys.readouterr().err
        said[" ".join(argv[1:])] = capsys.readouterr()
    log = said["train adult.json --out runs/adult --no-progress"].out.splitlines()
    shown_log = shown("data: table columns").splitlines()
    assert log[:4] == shown_log[:4]  # the data's lines, exactly: the table and its split are seeded
    assert _matches_in_order(shown_log, log) == []
    report = said["eval runs/adult --data more.csv"].out.splitlines()
    assert _matches_in_order(shown("more.csv: accuracy").splitlines(), report) == []
    predicted = said["predict runs/adult --data new.csv --proba"]
    *rows, stderr = shown("prediction,").splitlines()
    assert _matches_in_order(rows, predicted.out.splitlines()) == [] and len(predicted.out.splitlines()) == len(rows)
    assert _matches_in_order([stderr], predicted.err.splitlines()) == []
    net = gn.load_checkpoint("runs/adult")
    with open("new.csv", newline="") as handle:
        raw = [[row[name] for name in net.encoding.names] for row in csv.DictReader(handle)]
    assert [line.split(",")[0] for line in predicted.out.splitlines()[1:]] == net.predict(raw).tolist()
    if not HAVE_ONNX:
        pytest.skip("the ONNX part needs the [onnx] extra: pip install 'graphnet[onnx]'")
    namespace: dict = {}
    exec(compile(onnx_runtime, "README.md (Tables, ONNX Runtime)", "exec"), namespace)
    capsys.readouterr()
    np.testing.assert_allclose(namespace["scores"], net.forward(net.prepare(namespace["rows"])), rtol=1e-4, atol=1e-4)
    assert np.asarray(net.class_names)[namespace["scores"].argmax(axis=1)].tolist() == \
        net.predict(namespace["rows"]).tolist()
