"""Every output option of every command, written onto a character device, a FIFO, symlinks and
`-`: nothing that is not a regular file is ever replaced by one (graphnet.system.fileio.open_output).

A file output writes through a device or FIFO in place, follows a symlink to its target (a
dangling one gets its target made) and writes `-` to stdout; a folder output follows a symlink
to a folder and refuses anything else that is not a folder; the database of `sweep --storage`
refuses a device or FIFO. The table OUTPUTS is checked against the CLI's parser: a new output
option fails `test_the_table_lists_every_output_option` until it is listed here.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from graphnet.cli import build_parser, main

from tests._support.extras import HAVE_MATPLOTLIB, HAVE_ONNX, HAVE_OPTUNA, HAVE_TENSORBOARDX
from tests._support.paths import ROOT


@dataclass(frozen=True)
class Context:
    """What the commands read: a trained run folder, examples for it, a run file, an ONNX model
    and a sweep file, all in one temporary folder."""

    folder: Path
    run: Path
    examples: Path
    run_file: Path
    model: Path | None
    sweep_file: Path


@dataclass(frozen=True)
class Output:
    """An output option: the command, the option's argparse dest, what it writes ("file",
    "folder" or "database") and the command line writing to a path."""

    command: str
    dest: str
    kind: str
    argv: Callable[[Context, str], list[str]]
    needs: str | None = None  # an optional extra: "onnx", "optuna", "tensorboard" or "plot"
    existing: bool = False  # the folder must hold a run already (--resume)


OUTPUTS = [
    Output("schema", "out", "file", lambda c, p: ["schema", "-o", p]),
    Output("predict", "out", "file", lambda c, p: ["predict", str(c.run), "--data", str(c.examples), "--out", p]),
    Output("export", "out", "file", lambda c, p: ["export", str(c.run), p], needs="onnx"),
    Output("bench", "json", "file", lambda c, p: ["bench", "--json", p]),
    Output("train", "out", "folder", lambda c, p: ["train", str(c.run_file), "--out", p, "--no-progress"]),
    Output("train", "resume", "folder", lambda c, p: ["train", "--resume", p, "--epochs", "2", "--no-progress"],
           existing=True),
    Output("import", "out", "folder", lambda c, p: ["import", str(c.model), p], needs="onnx"),
    Output("train", "tensorboard", "folder",
           lambda c, p: ["train", str(c.run_file), "--out", str(c.folder / f"tb-{abs(hash(p))}"), "--tensorboard", p,
                         "--no-progress"], needs="tensorboard"),
    Output("eval", "plot", "folder", lambda c, p: ["eval", str(c.run), "--plot", p], needs="plot"),
    Output("sweep", "out", "folder", lambda c, p: ["sweep", str(c.sweep_file), "--trials", "1", "--out", p],
           needs="optuna"),
    Output("sweep", "storage", "database",
           lambda c, p: ["sweep", str(c.sweep_file), "--trials", "1", "--out", str(c.folder / "sweep-db"),
                         "--storage", f"sqlite:///{p}"], needs="optuna"),
]
# string arguments whose help reads like an output's, but which are only read
READ_ONLY = {("eval", "run"), ("predict", "run"), ("export", "run"), ("sweep", "file")}

NODES = {  # what each kind of output is written onto
    "file": ["device", "fifo", "link-to-file", "dangling-link", "link-to-folder", "stdout"],
    "folder": ["device", "fifo", "link-to-file", "dangling-link", "link-to-folder"],
    "database": ["device", "fifo", "link-to-file", "dangling-link"],
}
CASES = [(output, node) for output in OUTPUTS for node in NODES[output.kind]]


def written(output: Output, node: str) -> bool:
    """Whether the command writes (through `node` or its link) or refuses (exit 1, `node` left as it was)."""
    if output.kind == "file":
        return node != "link-to-folder"
    if node == "dangling-link":
        return not output.existing  # nothing there to resume
    return node == "link-to-folder" and output.kind == "folder"


def output_like_arguments() -> set[tuple[str, str]]:
    """(command, dest) of every string argument whose dest, metavar or help speaks of writing,
    out, a folder or directory, storage or JSON."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    found = set()
    for name, command in commands.items():
        for action in command._actions:
            words = f"{action.dest} {action.metavar or ''} {action.help or ''}".lower()
            if (isinstance(action, argparse._StoreAction) and action.type is None and action.choices is None
                    and re.search(r"\bout|writ|folder|\bdir\b|storage|\bjson\b|\bsave", words)):
                found.add((name, action.dest))
    return found


def test_the_table_lists_every_output_option():
    assert output_like_arguments() - READ_ONLY == {(o.command, o.dest) for o in OUTPUTS}


# ---- the things written onto ------------------------------------------------------------------


class Drain:
    """A reader of a FIFO on a thread, collecting what writers send until stopped. It holds the
    FIFO open from the start (so a writer's open() does not wait) and never blocks: stop()
    returns even if nothing was written, or the FIFO was replaced."""

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.data, self.stopping = bytearray(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            stopping = self.stopping.is_set()  # read what is left, then stop
            if select.select([self.fd], [], [], 0.05)[0]:
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    chunk = b""
                self.data += chunk
                if chunk:
                    continue
                time.sleep(0.01)  # end of file: no writer at this moment
            if stopping:
                return

    def stop(self) -> bytes:
        self.stopping.set()
        self.thread.join()
        os.close(self.fd)
        return bytes(self.data)


def make_node(node: str, path: Path, folder: Path) -> Path | None:
    """Create `node` at `path`; returns the symlink's target for the links."""
    if node == "device":
        if os.geteuid() != 0:
            pytest.skip("creating a character device needs root (os.mknod)")
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    elif node == "fifo":
        os.mkfifo(path)
    elif node != "stdout":
        target = folder / {"link-to-file": "users-file", "dangling-link": "missing-target",
                           "link-to-folder": "users-folder"}[node]
        if node == "link-to-file":
            target.write_bytes(b"the user's own file\n")
        elif node == "link-to-folder":
            target.mkdir()
        os.symlink(target, path)
        return target
    return None


def kind_of(path: Path) -> tuple[int, int]:
    """The file type and device number of `path` itself (a symlink not followed)."""
    info = os.lstat(path)
    return stat.S_IFMT(info.st_mode), info.st_rdev


# ---- the commands -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Context:
    folder = tmp_path_factory.mktemp("outputs")
    run = json.loads((ROOT / "specs" / "spiral_mlp.json").read_text())
    run.pop("$schema")
    run["train"]["epochs"] = 1
    run_file = folder / "run.json"
    run_file.write_text(json.dumps(run))
    assert main(["train", str(run_file), "--out", str(folder / "trained"), "--no-progress"]) == 0
    examples = folder / "examples.npy"
    np.save(examples, np.random.default_rng(0).standard_normal((7, 2)))
    model = None
    if HAVE_ONNX:
        model = folder / "model.onnx"
        assert main(["export", str(folder / "trained"), str(model)]) == 0
    sweep_file = folder / "sweep.json"
    sweep_file.write_text(json.dumps({"run": run, "space": {"train.optimizer.learning_rate":
                                                            {"log_uniform": [1e-2, 1e-1]}},
                                      "metric": "val_accuracy", "direction": "maximize", "seed": 3}))
    return Context(folder, folder / "trained", examples, run_file, model, sweep_file)


@pytest.fixture
def quick_bench(monkeypatch):
    """`graphnet bench` measuring nothing: these tests are about where --json goes."""
    import graphnet.benchmarks.kernels as kernel_bench
    import graphnet.benchmarks.step as step_bench

    monkeypatch.setattr(kernel_bench, "run_kernel_bench", lambda **kwargs: [])
    monkeypatch.setattr(kernel_bench, "format_table", lambda rows: "(kernels)")
    monkeypatch.setattr(step_bench, "run_step_bench", lambda **kwargs: [{"size": "S", "ratio": 1.0}])
    monkeypatch.setattr(step_bench, "format_step_table", lambda rows: "(steps)")


def run(output: Output, context: Context, path: str, capsysbinary) -> tuple[int, bytes, str]:
    """Exit code, stdout (bytes) and stderr of the command writing `output` to `path`."""
    code = main(output.argv(context, path))
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err.decode()


def reference(output: Output, context: Context, folder: Path, capsysbinary) -> bytes:
    """What the command writes into a regular file."""
    path = folder / "regular"
    assert run(output, context, str(path), capsysbinary)[0] == 0
    return path.read_bytes()


@pytest.mark.parametrize("output, node", CASES, ids=[f"{o.command}-{o.dest}-{n}" for o, n in CASES])
def test_an_output_never_replaces_what_is_not_a_regular_file(output, node, context, tmp_path, capsysbinary,
                                                             quick_bench):
    if output.needs == "onnx" and not HAVE_ONNX:
        pytest.skip("needs the onnx package: pip install 'graphnet[onnx]'")
    if output.needs == "optuna" and not HAVE_OPTUNA:
        pytest.skip("needs optuna: pip install 'graphnet[sweep]'")
    if output.needs == "tensorboard" and not HAVE_TENSORBOARDX:
        pytest.skip("needs tensorboardX: pip install 'graphnet[tensorboard]'")
    if output.needs == "plot" and not HAVE_MATPLOTLIB:
        pytest.skip("needs matplotlib: pip install 'graphnet[plot]'")
    expected = reference(output, context, tmp_path, capsysbinary) if output.kind == "file" else None
    path = tmp_path / "out"
    target = make_node(node, path, tmp_path)
    if output.existing and node == "link-to-folder":
        shutil.rmtree(target)
        shutil.copytree(context.run, target)  # a run to resume, through the link
    before = kind_of(path) if node != "stdout" else None
    listing = sorted(tmp_path.iterdir())
    drain = Drain(path) if node == "fifo" and output.kind != "database" else None
    try:
        code, out, err = run(output, context, "-" if node == "stdout" else str(path), capsysbinary)
    finally:
        received = drain.stop() if drain is not None else b""
    if node == "stdout":
        assert code == 0, err
        assert expected in out
        return
    assert kind_of(path) == before  # the device, FIFO or link itself is still there, as it was
    if target is not None:
        assert os.readlink(path) == str(target)
    if not written(output, node):
        assert code == 1, err
        assert err.count("\n") == 1 and "internal error" not in err, err
        assert str(path) in err or str(target) in err or os.path.realpath(path) in err, err
        assert sorted(tmp_path.iterdir()) == listing  # nothing made beside it (a journal, a temporary)
        if node == "link-to-file":
            assert target.read_bytes() == b"the user's own file\n"
        elif node == "link-to-folder":
            assert list(target.iterdir()) == []
        elif node == "dangling-link":
            assert not target.exists()
        return
    assert code == 0, err
    if output.kind == "file":
        if node == "fifo":
            assert received == expected
        elif target is not None:
            assert target.read_bytes() == expected
    elif output.kind == "folder":
        assert target.is_dir() and any(target.iterdir())
    else:
        assert target.is_file() and target.read_bytes().startswith(b"SQLite format 3")
