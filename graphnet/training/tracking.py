"""Where practitioners watch runs: TensorBoard event files and MLflow runs, each an optional extra.

    "train": {..., "tensorboard": {"dir": "tb", "histograms": false},
                   "mlflow": {"tracking_uri": null, "experiment": "graphnet"}}
    graphnet train RUN.json --tensorboard tb --mlflow [URI]

Each epoch, once it is in the history and the checkpoint, logs its scalars: the
losses and metrics of the epoch record (TensorBoard tags `loss/train`,
`accuracy/val`, ...; MLflow keys `train_loss`, `val_accuracy`, ...), the learning
rate and the epoch's seconds, at step = the epoch number; TensorBoard also a
histogram of every parameter when `histograms` is on. When training ends, MLflow
gets the final metrics (metrics.json's numbers; `served_val_loss` and the like for
those an epoch logs too) and the run folder (model, plots, history) as artifacts, and the run is marked finished (killed when interrupted,
failed on an error).

TensorBoard's events are written with tensorboardX (`graphnet[tensorboard]`): a small
writer on protobuf alone, where torch.utils.tensorboard needs torch and TensorBoard
itself is only needed to view them. MLflow goes through `MlflowClient`, never the
fluent API's process-global active run (`graphnet[mlflow]`: mlflow-skinny). Its default
tracking URI is the local file store `./mlruns`, which MLflow 3 opens only with
MLFLOW_ALLOW_FILE_STORE=true: graphnet sets it (unless set) for a file store.

Resume continues the same run: TensorBoard writes on in the same folder from the next
epoch (steps after it, from an earlier try, are purged), and the MLflow run's id is
kept in the run folder (`mlflow_run.json`) and logged to again. Only the process that
writes the run folder tracks (MPI rank 0). A sweep's trials log as child runs of
one parent run (`"parent_run_id"`).
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import GraphnetError
from ..runs.folder import MLFLOW_RUN_FILE
from ..spec import MlflowSpec, RunSpec, TensorBoardSpec
from ..system.fileio import write_text_atomic
from .records import AnyEpochRecord, TrainResult

TENSORBOARD_HINT = "pip install 'graphnet[tensorboard]'"
MLFLOW_HINT = "pip install 'graphnet[mlflow]'"
DEFAULT_TRACKING_URI = "mlruns"


def require_tensorboard() -> Any:
    """tensorboardX's SummaryWriter, or a GraphnetError saying which extra to install."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise GraphnetError(f"--tensorboard (train.tensorboard) needs tensorboardX, which is not installed: "
                            f"{TENSORBOARD_HINT}") from None
    return SummaryWriter


def require_mlflow() -> Any:
    """The mlflow module, or a GraphnetError saying which extra to install."""
    try:
        import mlflow
        import mlflow.entities  # noqa: F401
    except ImportError:
        raise GraphnetError(f"--mlflow (train.mlflow) needs mlflow, which is not installed: {MLFLOW_HINT}") from None
    return mlflow


def epoch_scalars(record: AnyEpochRecord) -> dict[str, float]:
    """The numbers of an epoch record by name (train_loss, val_accuracy, learning_rate, seconds, ...)."""
    return {name: float(value) for name, value in asdict(record).items()
            if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)}


def flat_settings(document: Any, prefix: str = "") -> dict[str, str]:
    """A JSON document as {dotted.path: value text} (lists by index), MLflow's params."""
    if isinstance(document, dict):
        items = document.items()
    elif isinstance(document, list):
        items = ((str(i), value) for i, value in enumerate(document))
    else:
        return {prefix: json.dumps(document) if not isinstance(document, str) else document}
    flat: dict[str, str] = {}
    for key, value in items:
        flat.update(flat_settings(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


class TensorBoardLog:
    """Event files in `settings.dir` (see the module docstring)."""

    def __init__(self, settings: TensorBoardSpec, first_epoch: int) -> None:
        writer = require_tensorboard()
        self.histograms = settings.histograms
        # tensorboardX names an event file by the second it opened it, and TensorBoard reads the
        # files in name order: a resume within the same second would truncate the first file, so
        # each writer adds the nanosecond it started (fixed width, so names sort as times do).
        self.writer = writer(settings.dir, purge_step=first_epoch if first_epoch > 1 else None,
                             filename_suffix=f".{time.time_ns():020d}.{os.getpid()}")

    def epoch(self, record: AnyEpochRecord, net: Any) -> None:
        for name, value in epoch_scalars(record).items():
            split, _, metric = name.partition("_")
            tag = f"{metric}/{split}" if split in ("train", "val") and metric else name
            self.writer.add_scalar(tag, value, record.epoch)
        if self.histograms:
            for name in net.store.names():
                self.writer.add_histogram(f"parameters/{name}", net.store.view(name), record.epoch)
        self.writer.flush()

    def finish(self, result: TrainResult, status: str) -> None:
        self.writer.close()


def mlflow_client(settings: MlflowSpec) -> tuple[Any, Any, str]:
    """(the mlflow module, an MlflowClient, its tracking URI) for `settings` (see the module docstring)."""
    mlflow = require_mlflow()
    uri = settings.tracking_uri or DEFAULT_TRACKING_URI
    if "://" not in uri and not uri.startswith("file:"):
        uri = Path(uri).resolve().as_uri()  # a plain path: the file store there
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    with mlflow_errors(uri):
        return mlflow, mlflow.MlflowClient(tracking_uri=uri), uri


@contextmanager
def mlflow_errors(uri: str) -> Iterator[None]:
    """MLflow's own errors in the block (an unsupported scheme, a server that does not answer)
    as a GraphnetError naming the tracking URI, in one line."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as error:
        lines = str(error).strip().splitlines()
        raise GraphnetError(f"--mlflow (train.mlflow.tracking_uri) {uri}: "
                            f"{(lines[0] if lines else type(error).__name__)[:300]}") from None


def experiment_id(client: Any, name: str) -> str:
    """The id of the MLflow experiment `name`, created if missing."""
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment is not None else client.create_experiment(name)


def start_parent_run(settings: MlflowSpec, name: str, tags: dict[str, str]) -> str:
    """A new MLflow run to hold a sweep's trials as its children; its id."""
    _, client, uri = mlflow_client(settings)
    with mlflow_errors(uri):
        return client.create_run(experiment_id(client, settings.experiment), run_name=name, tags=tags).info.run_id


def end_parent_run(settings: MlflowSpec, run_id: str, interrupted: bool) -> None:
    """Mark a sweep's parent run finished (killed when the sweep was interrupted)."""
    _, client, uri = mlflow_client(settings)
    with mlflow_errors(uri):
        client.set_terminated(run_id, "KILLED" if interrupted else "FINISHED")


class MlflowLog:
    """One MLflow run (see the module docstring); `out` keeps its id for a resume."""

    def __init__(self, settings: MlflowSpec, run: RunSpec, out: Path | None, resumed: bool,
                 say: Callable[[str], None]) -> None:
        mlflow, self.client, uri = mlflow_client(settings)
        self.entities, self.out, self.uri = mlflow.entities, out, uri
        with mlflow_errors(uri):
            self._start(settings, run, out, resumed, say, uri)

    def _start(self, settings: MlflowSpec, run: RunSpec, out: Path | None, resumed: bool,
               say: Callable[[str], None], uri: str) -> None:
        saved = _saved_run(out) if resumed else None
        if saved is not None:
            self.run_id, uri = saved
            self.uri = uri
            self.client = require_mlflow().MlflowClient(tracking_uri=uri)
            self.client.update_run(self.run_id, status="RUNNING")
            say(f"mlflow: continuing run {self.run_id} at {uri}")
            return
        tags = {"graphnet.run_folder": str(out.resolve())} if out is not None else {}
        if settings.parent_run_id:
            tags["mlflow.parentRunId"] = settings.parent_run_id
        name = out.name if out is not None else run.network.name
        self.run_id = self.client.create_run(experiment_id(self.client, settings.experiment), run_name=name,
                                             tags=tags).info.run_id
        if out is not None:
            write_text_atomic(out / MLFLOW_RUN_FILE, json.dumps({"run_id": self.run_id, "tracking_uri": uri}) + "\n")
        settings_document = json.loads(run.train.model_dump_json())
        params = flat_settings({"network": run.network.name, "train": settings_document})
        self._log(params={key[:250]: value[:6000] for key, value in params.items()})
        say(f"mlflow: run {self.run_id} in experiment '{settings.experiment}' at {uri}")

    def _log(self, metrics: dict[str, float] | None = None, step: int = 0,
             params: dict[str, str] | None = None) -> None:
        now = int(time.time() * 1000)
        items = [self.entities.Metric(key, value, now, step) for key, value in (metrics or {}).items()]
        names = [self.entities.Param(key, value) for key, value in (params or {}).items()]
        with mlflow_errors(self.uri):  # a server gone mid-run: the epoch is in the checkpoint already
            for start in range(0, max(len(items), len(names)), 100):  # MLflow takes at most 100 params a batch
                self.client.log_batch(self.run_id, metrics=items[start:start + 100], params=names[start:start + 100])

    def epoch(self, record: AnyEpochRecord, net: Any) -> None:
        self._log(epoch_scalars(record), record.epoch)

    def finish(self, result: TrainResult, status: str) -> None:
        if result is not None:
            # metrics.json's numbers; those an epoch logs too (val_loss, ...) as served_<key>: the served
            # model's, which early stopping takes from the best epoch, not the last
            epoch_keys = set(epoch_scalars(result.history[-1])) if result.history else set()
            final = {f"served_{key}" if key in epoch_keys else key: float(value)
                     for key, value in result.metrics.items()
                     if isinstance(value, (int, float)) and not isinstance(value, bool)}
            self._log(final, len(result.history))
        with mlflow_errors(self.uri):
            if result is not None and self.out is not None:
                self.client.log_artifacts(self.run_id, str(self.out))
            self.client.set_terminated(self.run_id, status)


def _saved_run(out: Path | None) -> tuple[str, str] | None:
    """The MLflow run id and tracking URI a run folder was logged to, if any."""
    if out is None:
        return None
    try:
        document = json.loads((out / MLFLOW_RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    run_id, uri = document.get("run_id"), document.get("tracking_uri")
    return (run_id, uri) if isinstance(run_id, str) and run_id and isinstance(uri, str) and uri else None


class Trackers:
    """The trackers a run's settings ask for, called together."""

    def __init__(self, logs: list[Any]) -> None:
        self.logs = logs

    def epoch(self, record: AnyEpochRecord, net: Any) -> None:
        for log in self.logs:
            log.epoch(record, net)

    def finish(self, result: TrainResult | None, error: bool = False) -> None:
        """Close every tracker: FINISHED, KILLED (interrupted) or FAILED (`error`)."""
        status = "FAILED" if error or result is None else "KILLED" if result.interrupted else "FINISHED"
        for log in self.logs:
            log.finish(result, status)  # type: ignore[arg-type]


def open_trackers(run: RunSpec, out: Path | None, first_epoch: int, resumed: bool,
                  say: Callable[[str], None]) -> Trackers:
    """The trackers of `run`'s settings, opened to log from epoch `first_epoch` (1-based)."""
    logs: list[Any] = []
    settings = run.train
    if settings.tensorboard is not None:
        logs.append(TensorBoardLog(settings.tensorboard, first_epoch))
    if settings.mlflow is not None:
        logs.append(MlflowLog(settings.mlflow, run, out, resumed, say))
    return Trackers(logs)


def check_trackers_installed(run: RunSpec) -> None:
    """GraphnetError naming the extra to install for a tracker the run asks for."""
    if run.train.tensorboard is not None:
        require_tensorboard()
    if run.train.mlflow is not None:
        require_mlflow()
