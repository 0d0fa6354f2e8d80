"""Data-parallel training over MPI (graphnet.training.distributed, graphnet.training.parallel): the
pieces, in this process. Two ranks under mpiexec: tests/system/training/test_distributed.py."""
from __future__ import annotations

import io
import os
import signal
import sys

import numpy as np
import pytest

from graphnet.cli import main
from graphnet.errors import GraphnetError, NonFiniteError
from graphnet.runs.lock import host_name
from graphnet.system.interrupts import forget_stop, note_stop
from graphnet.training import distributed
from graphnet.training.distributed import (
    LAUNCHER_PID_VARIABLE,
    RankFailed,
    World,
    check_mpi_available,
    launch_command,
    launch_environment,
    launched_by_mpi,
    launcher_outcome,
    quiet_unless_root,
)
from graphnet.training.parallel import rank_bounds, rank_dropout_generator

from tests._support.commands import error_lines
from tests._support.paths import SPECS

SPIRAL = SPECS / "spiral_mlp.json"


# ---- without MPI: the pieces ------------------------------------------------------------------

@pytest.mark.parametrize("examples,size", [(32, 2), (33, 2), (7, 3), (1, 2), (0, 2), (100, 7)])
def test_rank_bounds_split_a_batch_evenly_and_cover_it_once(examples, size):
    bounds = [rank_bounds(examples, rank, size) for rank in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == examples
    assert all(bounds[r][1] == bounds[r + 1][0] for r in range(size - 1))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_dropout_generators_differ_by_rank_and_follow_the_seed():
    draws = [rank_dropout_generator(5, rank).random(4) for rank in (0, 1)]
    assert not np.allclose(draws[0], draws[1])
    assert np.array_equal(rank_dropout_generator(5, 1).random(4), draws[1])
    assert not np.allclose(rank_dropout_generator(5, 1, epoch=2, iteration=3).random(4), draws[1])


@pytest.mark.parametrize("environ,expected", [
    ({}, False),
    ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"}, True),
    ({"OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"}, False),
    ({"PMI_SIZE": "4", "PMI_RANK": "3"}, True),
    ({"PMIX_RANK": "0"}, True),
])
def test_launched_by_mpi_reads_the_launchers_variables(environ, expected):
    assert launched_by_mpi(environ) is expected


def test_a_single_process_world_does_nothing_and_raises_its_own_error():
    world = World()
    buffer = np.arange(4.0)
    world.average_into(buffer)
    world.sum_into(buffer)
    world.broadcast_into(buffer)
    assert np.array_equal(buffer, np.arange(4.0))
    assert world.agree(lambda: 7) == 7
    with pytest.raises(NonFiniteError, match="boom"):
        world.agree(lambda: (_ for _ in ()).throw(NonFiniteError("boom")))


def test_launch_environment_allows_root_and_leaves_the_threads_to_the_ranks(monkeypatch):
    """Each rank sets its BLAS threads once, in its setup (graphnet.runtime.threads.set_rank_threads), however
    it was launched: the launcher passes the user's settings through and adds none."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    environment = launch_environment({"PATH": "/bin", "OMP_NUM_THREADS": "3"})
    assert environment["OMPI_ALLOW_RUN_AS_ROOT"] == environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] == "1"
    assert "OPENBLAS_NUM_THREADS" not in environment and "GRAPHNET_THREADS" not in environment
    assert environment["OMP_NUM_THREADS"] == "3"  # the user's choice stands
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "OMPI_ALLOW_RUN_AS_ROOT" not in launch_environment({"PATH": "/bin"})


def test_launch_command_reruns_graphnet_under_mpiexec_without_workers():
    command = launch_command("/opt/mpi/bin/mpiexec", 2, ["train", "run.json", "--out", "r"])
    assert command[:3] == ["/opt/mpi/bin/mpiexec", "-n", "2"]
    assert command[-6:] == [sys.executable, "-m", "graphnet", "train", "run.json", "--out", "r"][-6:]
    assert "--workers" not in command


def test_launcher_output_leaves_out_mpiexecs_banners():
    source = io.StringIO("graphnet train: r: in use by process 1\n" + "-" * 74 + "\n"
                         "prterun detected that one or more processes exited with non-zero status,\n"
                         "   Exit code:    1\n" + "-" * 74 + "\n"
                         "[vm:13811] PMIX ERROR: PMIX_ERR_UNREACH in file pmix_server.c at line 3146\n"
                         "epoch   1/5  loss 0.9\n")
    target = io.StringIO()
    distributed._copy_without_banners(source, target)
    assert target.getvalue() == "graphnet train: r: in use by process 1\nepoch   1/5  loss 0.9\n"


# Open MPI 5's report of a rank killed by `kill -9` (its banner wraps anywhere)
RANK_KILLED = ("prterun noticed that process rank 1 with PID 10969 on node vm exited on\n"
               "signal 9 (Killed).\n")


def test_launcher_output_keeps_the_banners_for_the_launchers_own_line():
    source = io.StringIO("epoch   1/5  loss 0.9\n" + "-" * 74 + "\n" + RANK_KILLED + "-" * 74 + "\n")
    target = io.StringIO()
    banners, printed = distributed._copy_without_banners(source, target)
    assert target.getvalue() == "epoch   1/5  loss 0.9\n" and printed == 1
    assert banners == [RANK_KILLED]


@pytest.mark.parametrize("code, requests, banners, printed, line, exit_code", [
    (0, 0, [], 3, None, 0),
    (1, 0, [], 1, None, 1),  # the ranks said why (rank 0's one line)
    # kill -9 of one rank: it was exit 137 with an empty stderr
    (137, 0, [RANK_KILLED], 0, "rank 1 (process 10969 on vm) was killed by signal 9 (SIGKILL); "
                                "the other ranks were stopped", 1),
    (-9, 0, [], 0, "mpiexec was killed by signal 9 (SIGKILL); the ranks were stopped", 1),
    (1, 0, ["There are not enough slots available in the system\n"], 0,
     "mpiexec failed with exit code 1: There are not enough slots available in the system", 1),
    (130, 1, [], 0, None, 130),  # one Ctrl-C: the ranks stopped with a checkpoint and said so
    # a second Ctrl-C: it was exit 1 with no message
    (1, 2, [], 0, "interrupted again: the ranks were stopped at once (the last checkpoint saved stays)", 130),
])
def test_the_launcher_says_how_the_ranks_ended(code, requests, banners, printed, line, exit_code):
    forget_stop()
    if requests:
        note_stop(signal.SIGINT)
    assert launcher_outcome(code, requests, banners, printed) == (line, exit_code)
    note_stop(signal.SIGTERM)
    if requests:
        assert launcher_outcome(code, requests, banners, printed)[1] == 143
    forget_stop()


def test_the_ranks_watch_the_launcher_only_on_its_machine():
    variable = launch_environment({"PATH": "/bin"})[LAUNCHER_PID_VARIABLE]
    assert variable == f"{os.getpid()} {host_name()}"
    assert World(rank=1, size=2).watch_launcher({LAUNCHER_PID_VARIABLE: f"{os.getpid()} elsewhere"}) is None
    assert World(rank=0, size=1).watch_launcher({LAUNCHER_PID_VARIABLE: variable}) is None  # not a rank of many
    assert World(rank=1, size=2).watch_launcher({}) is None  # started by mpiexec by hand
    watcher = World(rank=1, size=2).watch_launcher({LAUNCHER_PID_VARIABLE: variable})  # this process: alive
    assert watcher is not None and watcher.daemon and watcher.is_alive()


def test_peers_exit_silently_with_the_failing_ranks_code(capsys):
    with pytest.raises(SystemExit) as stopped:
        with quiet_unless_root(World(rank=1, size=2)):
            raise RankFailed("rank 0: r: in use by process 1", 1)
    assert stopped.value.code == 1
    with pytest.raises(SystemExit) as stopped:
        with quiet_unless_root(World(rank=1, size=2)):
            raise KeyboardInterrupt
    assert stopped.value.code == 130
    assert capsys.readouterr().err == ""
    with pytest.raises(RankFailed):  # rank 0 lets the CLI print it
        with quiet_unless_root(World()):
            raise RankFailed("rank 1: boom")


def test_workers_without_mpi4py_is_one_line_naming_the_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py -> ImportError
    with pytest.raises(GraphnetError, match=r"graphnet\[mpi\]"):
        check_mpi_available()
    code = main(["train", str(SPIRAL), "--out", str(tmp_path / "r"), "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert error_lines(err) == [err.strip()] and "--workers needs mpi4py" in err and "graphnet[mpi]" in err
    assert not (tmp_path / "r").exists()


def test_workers_must_be_a_positive_count(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", str(SPIRAL), "--workers", "0"])
    assert stopped.value.code == 2


# Open MPI 5's banner when its launcher could not set itself up (seen once on a CI machine)
LISTENER_FAILED = "The PMIx server's listener thread failed to start. We cannot\ncontinue.\n"


@pytest.mark.parametrize("code, requests, banners, printed, retry", [
    (213, 0, [LISTENER_FAILED], 0, True),
    (213, 0, [LISTENER_FAILED], 2, False),   # a rank said something: it ran
    (213, 1, [LISTENER_FAILED], 0, False),   # the user asked to stop
    (1, 0, ["There are not enough slots available in the system\n"], 0, False),
    (137, 0, [RANK_KILLED], 0, False),
    (0, 0, [], 0, False),
])
def test_only_a_launcher_that_failed_before_any_rank_ran_is_retried(code, requests, banners, printed, retry):
    assert distributed.failed_before_any_rank(code, requests, banners, printed) is retry


def _fake_mpiexec(tmp_path, failures: int):
    """An mpiexec that fails `failures` times as Open MPI's did, then succeeds; it counts its calls."""
    calls = tmp_path / "calls"
    rule = "-" * 74
    script = tmp_path / "mpiexec"
    script.write_text(f"""#!/bin/sh
echo x >> "{calls}"
if [ "$(wc -l < "{calls}")" -le {failures} ]; then
    printf '%s\\n' "{rule}" "The PMIx server's listener thread failed to start. We cannot" "continue." "{rule}" >&2
    exit 213
fi
echo "epoch   1/1  loss 0.5" >&2
exit 0
""")
    script.chmod(0o755)
    return str(script), calls


def test_a_launcher_that_failed_to_start_is_run_again_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(distributed, "LAUNCH_RETRY_PAUSE", 0.0)
    mpiexec, calls = _fake_mpiexec(tmp_path, failures=1)
    assert distributed.launch(2, ["train", "run.json"], mpiexec=mpiexec) == 0
    assert len(calls.read_text().split()) == 2
    err = capsys.readouterr().err
    assert "mpiexec failed to start (exit code 213, before any rank ran); trying again (2 of 3)" in err
    assert "epoch   1/1" in err


def test_a_launcher_that_never_starts_gives_up_with_its_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(distributed, "LAUNCH_RETRY_PAUSE", 0.0)
    mpiexec, calls = _fake_mpiexec(tmp_path, failures=10)
    assert distributed.launch(2, ["train", "run.json"], mpiexec=mpiexec) == 213
    assert len(calls.read_text().split()) == distributed.LAUNCH_ATTEMPTS
    last = error_lines(capsys.readouterr().err)[-1]
    assert last == ("graphnet train: mpiexec failed with exit code 213: "
                    "The PMIx server's listener thread failed to start. We cannot continue.")
