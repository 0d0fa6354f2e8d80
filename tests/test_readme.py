"""The README's commands are the ones CI runs and the ones that set up a fresh machine (run as child
processes: tests/system/test_readme.py)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from graphnet.cli import main
from graphnet.data import DEBIAN_PACKAGES

from tests._support.paths import ROOT
from tests._support.readme import code_blocks, mpi_block, readme_command, section
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
