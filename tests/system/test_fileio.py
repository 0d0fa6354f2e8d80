"""Atomic writes: a reader sees the old file or the new one, never half of one, and a
failed write leaves the old content and no temporary file behind."""
from __future__ import annotations

import errno
import os
import re
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

import graphnet.system.fileio as fileio
from graphnet.system.fileio import fsync_folder, write_bytes_atomic, write_npz_atomic, write_text_atomic

from tests._support.package_source import PACKAGE, called_names, package_files


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_and_overwrite(tmp_path):
    target = tmp_path / "deep" / "er" / "file.json"
    write_text_atomic(target, "héllo\n")  # parent folders are created
    assert target.read_bytes() == "héllo\n".encode("utf-8")
    write_bytes_atomic(target, b"\x00binary\xff")
    assert target.read_bytes() == b"\x00binary\xff"
    write_bytes_atomic(target, b"")
    assert target.read_bytes() == b""
    assert leftovers(target.parent) == []


def test_the_temporary_file_is_hidden_beside_the_target(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((Path(src), Path(dst)))
        assert Path(src).read_bytes() == b"payload"  # complete and flushed before the rename
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", spy)
    write_bytes_atomic(tmp_path / "weights.npz", b"payload")
    (src, dst), = seen
    assert src.parent == dst.parent == tmp_path
    assert src.name.startswith(".weights.npz.") and src.name.endswith(".tmp")


def _failing(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc
    return fail


@pytest.mark.parametrize("where,exc", [
    ("replace", OSError(errno.EXDEV, "simulated rename failure")),
    ("fsync", OSError(errno.EIO, "simulated I/O error")),
    ("replace", KeyboardInterrupt()),  # Ctrl-C at the worst moment: BaseException path
])
def test_failure_keeps_old_content_and_removes_the_temporary(tmp_path, monkeypatch, where, exc):
    target = tmp_path / "metrics.json"
    write_text_atomic(target, "old content\n")
    monkeypatch.setattr(fileio.os, where, _failing(exc))
    with pytest.raises(type(exc)):
        write_text_atomic(target, "new content that must not appear\n")
    monkeypatch.undo()
    assert target.read_text() == "old content\n"
    assert leftovers(tmp_path) == []


def test_failure_mid_write_keeps_old_content(tmp_path, monkeypatch):
    """The disk fills up after half the data: the target is untouched."""
    target = tmp_path / "weights.npz"
    write_bytes_atomic(target, b"A" * 1000)
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space"):
        write_bytes_atomic(target, b"B" * 100_000)
    monkeypatch.undo()
    assert target.read_bytes() == b"A" * 1000
    assert leftovers(tmp_path) == []


def test_missing_file_stays_missing_on_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio.os, "replace", _failing(OSError(errno.EIO, "boom")))
    with pytest.raises(OSError):
        write_bytes_atomic(tmp_path / "new.bin", b"x")
    assert list(tmp_path.iterdir()) == []


def test_real_failure_target_is_a_folder(tmp_path):
    """No mock: the rename itself fails (the target is a non-empty folder)."""
    target = tmp_path / "checkpoint"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        write_bytes_atomic(target, b"data")
    assert (target / "keep").read_text() == "x"
    assert leftovers(tmp_path) == []


def test_real_failure_parent_is_a_file(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(OSError):
        write_text_atomic(tmp_path / "run" / "history.json", "[]")
    assert (tmp_path / "run").read_text() == "not a folder"
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_real_failure_unwritable_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "f").write_text("old")
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError):
            write_text_atomic(folder / "f", "new")
    finally:
        folder.chmod(0o755)
    assert (folder / "f").read_text() == "old"
    assert leftovers(folder) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_file_modes_are_those_of_a_plain_write(tmp_path):
    """mkstemp makes 0600 files; the written file must get the usual 0666 & ~umask (a run
    folder or `graphnet schema -o` output readable by others), or keep an existing mode."""
    mask = os.umask(0o022)
    os.umask(mask)
    fresh = tmp_path / "fresh.json"
    write_text_atomic(fresh, "{}")
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~mask
    kept = tmp_path / "kept.json"
    kept.write_text("{}")
    kept.chmod(0o640)
    write_text_atomic(kept, "[]")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    assert kept.read_text() == "[]"


def test_readers_never_see_a_torn_file(tmp_path):
    """A reader thread polling the file while it is rewritten sees only whole versions."""
    target = tmp_path / "weights.npz"
    versions = [bytes([k]) * 300_000 for k in range(4)]
    write_bytes_atomic(target, versions[0])
    stop, seen, torn = threading.Event(), set(), []

    def reader():
        while not stop.is_set():
            data = target.read_bytes()
            if data not in versions:
                torn.append(len(data))
            else:
                seen.add(data[0])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(60):
            write_bytes_atomic(target, versions[i % 4])
    finally:
        stop.set()
        thread.join()
    assert torn == []
    assert len(seen) >= 2
    assert leftovers(tmp_path) == []


def test_fsync_folder_tolerates_odd_paths(tmp_path, monkeypatch):
    """A folder that cannot be opened, or whose fsync fails (some file systems refuse
    to sync folders), is skipped: no error, nothing created, no descriptor left open."""
    opened, closed, synced = [], [], []
    real_open, real_close = os.open, os.close

    def recording_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        opened.append(fd)
        return fd

    def refusing_fsync(fd):
        synced.append(fd)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(fileio.os, "open", recording_open)
    monkeypatch.setattr(fileio.os, "close", lambda fd: (closed.append(fd), real_close(fd))[1])
    missing = tmp_path / "missing"
    assert fsync_folder(missing) is None
    assert not missing.exists() and opened == []

    monkeypatch.setattr(fileio.os, "fsync", refusing_fsync)
    assert fsync_folder(tmp_path) is None
    assert len(opened) == 1 and synced == opened and closed == opened
    assert list(tmp_path.iterdir()) == []


# ---- temporaries of live and dead writers -----------------------------------------------------


def test_the_temporary_name_carries_the_writers_pid(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(fileio.os, "replace", lambda src, dst: (seen.append(Path(src).name), real_replace(src, dst)))
    write_bytes_atomic(tmp_path / "weights.npz", b"x")
    assert fileio.writer_pid(seen[0], "weights.npz") == os.getpid()


@pytest.mark.skipif(os.name != "posix", reason="POSIX process ids")
def test_cleanup_removes_only_the_temporaries_of_dead_writers(tmp_path):
    import subprocess
    import sys

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        names = {"live": f".weights.npz.{live.pid}.abc_123x.tmp", "mine": f".weights.npz.{os.getpid()}.q1w2e3r4.tmp",
                 "dead": f".weights.npz.{dead.pid}.zzzz9999.tmp", "old": ".weights.npz.k3j4h5g6.tmp",
                 "other": f".history.json.{dead.pid}.aaaa1111.tmp"}
        for name in names.values():
            (tmp_path / name).write_bytes(b"partial")
        removed = fileio.remove_stale_temporaries(tmp_path, ["weights.npz"])
        assert sorted(p.name for p in removed) == sorted([names["dead"], names["old"]])
        assert leftovers(tmp_path) == sorted([names["live"], names["mine"], names["other"]])
    finally:
        live.kill()
        live.wait()


# ---- errors name the file being written ---------------------------------------------------------


@pytest.mark.parametrize("where", ["fsync", "replace", "mkstemp"])
def test_an_os_error_names_the_target_file(tmp_path, monkeypatch, where):
    """ENOSPC from write/fsync carries no file name, and mkstemp's names the temporary: the
    error names the file that was being written."""
    target = tmp_path / "checkpoint" / "weights.npz"
    owner = fileio.tempfile if where == "mkstemp" else fileio.os
    error = (OSError(errno.EROFS, "Read-only file system", str(tmp_path / "checkpoint" / ".weights.npz.1.x.tmp"))
             if where == "mkstemp" else OSError(errno.ENOSPC, "No space left on device"))
    monkeypatch.setattr(owner, where, _failing(error))
    with pytest.raises(OSError) as info:
        write_bytes_atomic(target, b"data")
    assert info.value.errno == error.errno and info.value.filename == str(target)
    assert info.value.strerror == error.strerror


def test_an_error_naming_another_file_is_kept(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(OSError) as info:
        write_text_atomic(tmp_path / "run" / "deeper" / "history.json", "[]")
    assert info.value.filename == str(tmp_path / "run" / "deeper")  # the folder that could not be made


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="zombie detection reads /proc (Linux)")
def test_an_exited_but_unreaped_process_is_not_alive():
    """A writer killed with SIGKILL stays a zombie until its parent reaps it; signal 0 still
    reaches a zombie, but it holds no lock and writes no file."""
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while fileio.process_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not fileio.process_alive(child.pid)
        assert os.path.exists(f"/proc/{child.pid}")  # still there, not yet reaped: a zombie
    finally:
        child.wait()
    assert fileio.process_alive(os.getpid())


def test_write_npz_atomic_round_trips_without_pickle(tmp_path):
    arrays = {"param/fc1.W": np.arange(6.0).reshape(2, 3), "meta": np.array('{"a": 1}'), "n": np.int64(3)}
    write_npz_atomic(tmp_path / "a.npz", arrays)
    with np.load(tmp_path / "a.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(arrays)
        for name, array in arrays.items():
            assert np.array_equal(npz[name], array) and npz[name].dtype == np.asarray(array).dtype
    assert leftovers(tmp_path) == []


def test_write_npz_atomic_names_the_file_on_a_disk_error(tmp_path):
    (tmp_path / "a.npz").mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(OSError) as info:
        write_npz_atomic(tmp_path / "a.npz", {"x": np.zeros(2)})
    assert info.value.filename == str(tmp_path / "a.npz")
    assert leftovers(tmp_path) == []


def test_every_npz_is_written_through_one_helper():
    """Checkpoints and the Solver write their .npz archives with write_npz_atomic."""
    writers = [path.relative_to(PACKAGE).as_posix() for path in package_files()
               if {"np.savez", "np.savez_compressed", "numpy.savez"} & called_names(path)]
    assert writers == ["system/fileio.py"]


def test_append_bytes_synced_appends_and_fsyncs(tmp_path, monkeypatch):
    synced = []
    real = fileio.os.fsync
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                        real(fd)))
    fileio.append_bytes_synced(tmp_path / "log", b"one\n")
    fileio.append_bytes_synced(tmp_path / "log", b"two\n")
    assert (tmp_path / "log").read_bytes() == b"one\ntwo\n"
    if Path("/proc/self/fd").is_dir():
        assert synced == [str(tmp_path / "log")] * 2
    fileio.truncate_synced(tmp_path / "log", 4)
    assert (tmp_path / "log").read_bytes() == b"one\n"


def test_append_and_truncate_name_the_file_on_an_os_error(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", full)
    for call in (lambda: fileio.append_bytes_synced(tmp_path / "log", b"x\n"),
                 lambda: fileio.truncate_synced(tmp_path / "log", 0)):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.filename == str(tmp_path / "log") and info.value.errno == errno.ENOSPC


# ---- what a path names decides how it is written (output_target, open_output) ------------------


WRITE_CALLS = ("write_text", "write_bytes", "onnx.save", "onnx.save_model", "np.save", "np.savez",
               "np.savez_compressed", "np.savetxt", "tofile", "os.replace", "os.rename", "tempfile.mkstemp",
               "tempfile.NamedTemporaryFile")
# modules that may open files for writing themselves, and why
OWN_WRITERS = {"system/fileio.py": "the one checked helper",
               "runs/lock.py": "the run folder's lock file, made with O_CREAT|O_EXCL: a lock, not an output",
               "system/console.py": "points stdout at the null device once its reader has gone"}


def _writes(path: Path) -> list[str]:
    """The calls in `path` that write a file: named writers, an open() given a writing mode,
    os.open given writing flags."""
    import ast

    found = [name for name in called_names(path) if name.endswith(WRITE_CALLS)]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not ast.unparse(node.func).endswith("open"):
            continue
        arguments = node.args + [keyword.value for keyword in node.keywords]
        modes = [a.value for a in arguments if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if any(re.fullmatch(r"[rbt]*[wax+][rbtwax+]*", mode) for mode in modes) or \
                re.search(r"O_WRONLY|O_RDWR|O_CREAT", " ".join(ast.unparse(a) for a in arguments)):
            found.append(ast.unparse(node))
    return found


def test_every_file_is_written_through_one_helper():
    """predict --out, export, schema -o, bench --json, import, run folders, checkpoints, sweep
    results: every writer goes through graphnet.system.fileio (open_output and the write_* helpers)."""
    writers = {path.relative_to(PACKAGE).as_posix(): _writes(path) for path in package_files()}
    assert {name: calls for name, calls in writers.items() if calls and name not in OWN_WRITERS} == {}
    assert all(writers[name] for name in OWN_WRITERS)  # the list names no module that stopped writing


def test_a_regular_or_missing_file_is_replaced_and_a_device_or_fifo_streamed(tmp_path):
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    assert fileio.output_target(tmp_path / "file").how == "replace"
    assert fileio.output_target(tmp_path / "missing" / "file").how == "replace"
    assert fileio.output_target(tmp_path / "fifo").how == "stream"
    assert fileio.output_target("/dev/null").how == "stream"
    assert fileio.output_target("-").how == "stdout"


def test_a_symlink_is_followed_to_its_target(tmp_path):
    (tmp_path / "users").write_text("old")
    os.symlink(tmp_path / "users", tmp_path / "link")
    os.symlink("nowhere/new", tmp_path / "dangling")  # relative to the link's folder
    assert fileio.output_target(tmp_path / "link").path == tmp_path / "users"
    write_text_atomic(tmp_path / "link", "new")
    write_text_atomic(tmp_path / "dangling", "made")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "users").read_text() == "new"
    assert (tmp_path / "dangling").is_symlink() and (tmp_path / "nowhere" / "new").read_text() == "made"
    assert leftovers(tmp_path) == []


def test_a_folder_a_socket_or_a_symlink_loop_is_refused_naming_the_path(tmp_path):
    import socket

    (tmp_path / "folder").mkdir()
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    try:
        for name, kind in (("folder", IsADirectoryError), ("sock", OSError), ("loop", OSError)):
            with pytest.raises(kind) as info:
                write_text_atomic(tmp_path / name, "x")
            assert info.value.filename == str(tmp_path / name)
        assert stat.S_ISSOCK(os.lstat(tmp_path / "sock").st_mode) and (tmp_path / "loop").is_symlink()
    finally:
        server.close()


def test_a_fifo_is_written_in_place_by_its_reader(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    with fileio.open_output(fifo, text=True) as out:
        out.write("héllo\n")
        out.write("world\n")
    reader.join(10)
    assert received == ["héllo\nworld\n".encode("utf-8")]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dash_is_standard_output(capsysbinary):
    write_bytes_atomic("-", b"\x00bytes\n")
    with fileio.open_output("-", text=True) as out:
        out.write("text\n")
    assert capsysbinary.readouterr().out == b"\x00bytes\ntext\n"


def test_make_folder_follows_links_and_refuses_what_is_not_a_folder(tmp_path):
    os.symlink(tmp_path / "target", tmp_path / "dangling")
    assert fileio.make_folder(tmp_path / "dangling") == tmp_path / "dangling"
    assert (tmp_path / "target").is_dir() and (tmp_path / "dangling").is_symlink()
    (tmp_path / "file").write_text("mine")
    os.mkfifo(tmp_path / "fifo")
    for name in ("file", "fifo"):
        with pytest.raises(NotADirectoryError, match="exists and is not a folder") as info:
            fileio.make_folder(tmp_path / name)
        assert info.value.filename == str(tmp_path / name)
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.skipif(os.name != "posix", reason="POSIX process ids")
def test_a_write_removes_what_dead_writers_left_for_its_target(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".pred.csv.{dead.pid}.abcd1234.tmp"
    other = tmp_path / f".other.csv.{dead.pid}.abcd1234.tmp"
    mine = tmp_path / f".pred.csv.{os.getpid()}.efgh5678.tmp"
    for path in (stale, other, mine):
        path.write_text("partial")
    write_text_atomic(tmp_path / "pred.csv", "done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, mine.name, "pred.csv"])
    # without target names: every graphnet temporary of a dead writer, and nothing else
    (tmp_path / ".notes.tmp").write_text("someone else's")
    assert fileio.remove_stale_temporaries(tmp_path) == [other]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".notes.tmp", mine.name, "pred.csv"])
