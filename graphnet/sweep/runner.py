"""Running a sweep on Optuna: the study in storage, trials in worker processes, each trial a run folder.

    result = run_sweep("sweep.json", trials=20, jobs=2, out="sweeps/spiral")

The study lives in storage (SQLite `DIR/study.db` by default, or any Optuna RDB URL),
so running the same command again resumes it: `trials` is the total the study should
reach, counting complete, pruned and failed trials (not those cut short by Ctrl-C).
Each trial trains the run with its sampled values into `DIR/trial-<number>/`. A trial
whose run is refused or whose training fails is marked failed, with the message, and
the sweep goes on.
"""
from __future__ import annotations

import math
import random
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..console import line_printer
from ..errors import GraphnetError
from ..fileio import make_folder, output_target
from .report import (BEST_FILE, PLOT_FILE, RESULTS_FILE, TrialRow, best_document, best_row, format_table,
                     plot_sweep, trial_rows, write_best_json, write_results_csv)
from .space import Distribution, Sweep, epoch_metric, load_sweep
from .workers import quotas, raise_interrupt, run_workers, sigterm_interrupts

NEEDS_OPTUNA = "graphnet sweep needs Optuna: pip install 'graphnet[sweep]'"
STUDY_FILE = "study.db"
HEARTBEAT_SECONDS = 10  # a trial whose worker is killed is marked failed after a few missed beats


class SweepError(GraphnetError):
    """A sweep can't run as asked: no Optuna, an unusable storage, a study of another sweep."""


class TrialFailed(Exception):
    """A trial's run was refused or its training failed; the message says why."""


@dataclass
class SweepResult:
    """The trials of the study (all of them, earlier runs' too), the best one, and whether
    this run was interrupted."""

    rows: list[TrialRow]
    best: TrialRow | None
    out: Path
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker process needs (picklable, for the 'spawn' start method)."""

    source: str | dict[str, Any]
    storage: str
    study_name: str
    target: int
    quota: int
    out: str
    prune: bool
    sampler_seed: int | None
    startup_trials: int


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SweepError(NEEDS_OPTUNA) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # graphnet prints one line per trial itself
    return optuna


def default_storage(out: Path) -> str:
    """The SQLite URL of DIR/study.db (absolute, so workers in any folder find it)."""
    return f"sqlite:///{(out / STUDY_FILE).resolve()}"


def shown_url(url: str) -> str:
    """A storage URL with its password masked, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy can parse: opening it reports that
        return url


def check_sqlite_file(url: str) -> None:
    """SweepError when a sqlite:/// URL names a device or FIFO (SQLite would write a journal
    beside it); an OSError naming the path for a folder."""
    if not url.startswith("sqlite:///"):
        return
    path = url[len("sqlite:///"):].partition("?")[0]
    if path and path != ":memory:" and output_target(path).how == "stream":
        raise SweepError(f"storage {shown_url(url)}: {path} is a device or FIFO, not a database file")


def open_storage(optuna: Any, url: str) -> Any:
    """An Optuna RDB storage (SQLite waits for a busy database instead of failing); SweepError
    naming the URL if it can't be opened."""
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental"
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=HEARTBEAT_SECONDS)
    except Exception as error:  # sqlalchemy's and the database drivers' errors, a missing driver
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SweepError(f"storage {shown_url(url)}: {reason}") from None


def counted_trials(study: Any) -> int:
    """Trials that count toward the target: complete, pruned and failed, not those interrupted."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for trial in study.get_trials(deepcopy=False, states=states)
               if not trial.user_attrs.get("interrupted"))


def _sweep_signature(sweep: Sweep) -> dict[str, Any]:
    """What a resumed study must share with the SWEEP.json that continues it."""
    return {"space": {path: dist.model_dump(by_alias=True, exclude_defaults=True)
                      for path, dist in sweep.spec.space.items()},
            "metric": sweep.spec.metric, "direction": sweep.direction}


def open_study(optuna: Any, sweep: Sweep, storage: Any, url: str, name: str, out: Path) -> Any:
    """The study `name` in `storage`, created if new. SweepError if it was made by another
    sweep, or if a new study would reuse `out`'s trial folders."""
    signature = _sweep_signature(sweep)
    exists = name in optuna.study.get_all_study_names(storage)
    if not exists:
        stale = sorted(path.name for path in out.glob("trial-*"))
        if stale:
            raise SweepError(f"{out}: holds trial folders ({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''}) "
                             f"but storage {shown_url(url)} has no study '{name}': give a new --out, or the "
                             f"--storage that holds their study")
    study = optuna.create_study(study_name=name, storage=storage, direction=sweep.direction, load_if_exists=True)
    saved = study.user_attrs.get("sweep")
    if saved is None:
        study.set_user_attr("sweep", signature)
    elif saved != signature:
        differs = ", ".join(key for key in signature if saved.get(key) != signature[key])
        raise SweepError(f"study '{name}' in {shown_url(url)} was made by a sweep with another {differs}: "
                         f"set a new \"study_name\" in the sweep file, or give a new --out")
    return study


def suggest(trial: Any, path: str, distribution: Distribution) -> Any:
    """The trial's value for `path`, drawn from `distribution`."""
    kind = distribution.kind
    if kind == "choice":
        return trial.suggest_categorical(path, distribution.choice)
    if kind == "int":
        lo, hi = distribution.int_range  # type: ignore[misc]
        return trial.suggest_int(path, lo, hi, step=int(distribution.step or 1), log=distribution.log)
    lo, hi = distribution.bounds_or_choices(kind)
    return trial.suggest_float(path, lo, hi, log=kind == "log_uniform", step=distribution.step)


def metric_value(result: Any, metric: str) -> float | None:
    """`metric` from a TrainResult: metrics.json's value, else the last epoch record's."""
    if result.metrics.get(metric) is not None:
        return float(result.metrics[metric])
    value = getattr(result.history[-1], metric, None) if result.history else None
    return None if value is None else float(value)


class Objective:
    """Trains one trial's run into DIR/trial-<number>/ and returns its metric; reports the
    per-epoch metric to the pruner when pruning."""

    def __init__(self, sweep: Sweep, out: Path, prune: bool, log: Callable[[str], None]):
        self.sweep, self.out, self.prune, self.log = sweep, out, prune, log
        self.optuna = import_optuna()

    def __call__(self, trial: Any) -> float:
        params: dict[str, Any] = {}
        folder = self.out / f"trial-{trial.number}"
        trial.set_user_attr("run", str(folder))
        started = time.perf_counter()
        try:
            for path, distribution in self.sweep.spec.space.items():
                params[path] = suggest(trial, path, distribution)
            result = self._train(trial, params, folder)
        except self.optuna.TrialPruned:
            self.log(f"trial {trial.number}: pruned at epoch {trial.user_attrs.get('pruned_at', '?')}  "
                     f"{_params_text(params)}")
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except GraphnetError as error:
            self._fail(trial, params, "; ".join(str(error).splitlines()))
        except Exception as error:  # an internal error: the trial fails, the sweep goes on
            self._fail(trial, params, f"internal error: {type(error).__name__}: {error}")
        finally:
            trial.set_user_attr("seconds", time.perf_counter() - started)
        if result.interrupted:
            trial.set_user_attr("interrupted", True)
            raise KeyboardInterrupt
        value = metric_value(result, self.sweep.spec.metric)
        if value is None or not math.isfinite(value):
            self._fail(trial, params, f"the run has no finite {self.sweep.spec.metric} ({value}): "
                                      "is its split empty?")
        self.log(f"trial {trial.number}: {self.sweep.spec.metric} {value:.4g}  {_params_text(params)}  "
                 f"{time.perf_counter() - started:.1f} s")
        return value  # type: ignore[return-value]

    def _train(self, trial: Any, params: Mapping[str, Any], folder: Path) -> Any:
        from ..training import train

        run = self.sweep.run_with(params)
        on_epoch = self._reporter(trial) if self.prune else None
        return train(run, out=folder, log=None, progress=False, on_epoch=on_epoch)

    def _reporter(self, trial: Any) -> Callable[[Any], None]:
        name = epoch_metric(self.sweep.spec.metric)

        def report(record: Any) -> None:
            value = getattr(record, name, None)
            if value is None or not math.isfinite(value):
                return
            trial.report(value, record.epoch)
            if trial.should_prune():
                trial.set_user_attr("pruned_at", record.epoch)
                raise self.optuna.TrialPruned(f"pruned at epoch {record.epoch} ({name} {value:.4g})")

        return report

    def _fail(self, trial: Any, params: Mapping[str, Any], message: str) -> None:
        trial.set_user_attr("error", message)
        self.log(f"trial {trial.number}: failed: {message}  {_params_text(params)}")
        raise TrialFailed(message)


def _params_text(params: Mapping[str, Any]) -> str:
    return " ".join(f"{path}={value:.4g}" if isinstance(value, float) else f"{path}={value}"
                    for path, value in params.items())


def make_pruner(optuna: Any, prune: bool, startup_trials: int, epochs: int) -> Any:
    """The median pruner, or none. It prunes once `startup_trials` trials have finished, from
    epoch max(1, epochs // 5) on: early epochs are too noisy to judge a run by."""
    if not prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=max(1, epochs // 5))


def work(plan: WorkerPlan, log: Callable[[str], None]) -> None:
    """Run up to `plan.quota` trials of the study (stopping once it has `plan.target`)."""
    optuna = import_optuna()
    sweep = load_sweep(plan.source)
    storage = open_storage(optuna, plan.storage)
    study = optuna.load_study(study_name=plan.study_name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=plan.sampler_seed),
                              pruner=make_pruner(optuna, plan.prune, plan.startup_trials, sweep.run.train.epochs))

    def stop_at_target(study: Any, trial: Any) -> None:
        if counted_trials(study) >= plan.target:
            study.stop()

    study.optimize(Objective(sweep, Path(plan.out), plan.prune, log), n_trials=plan.quota, catch=(TrialFailed,),
                   callbacks=[stop_at_target], gc_after_trial=False)


_say = line_printer("graphnet sweep")  # a closed stdout (`| head`) does not stop the sweep


def worker_main(plan: WorkerPlan) -> None:
    """A worker process: SIGTERM stops it as Ctrl-C does; exit 130 when interrupted. It starts
    with Ctrl-C ignored (see graphnet.sweep.workers), so that one during start-up prints no traceback."""
    import sys

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        work(plan, line_printer("graphnet sweep", notice=False))  # the parent says it once
    except KeyboardInterrupt:
        sys.exit(130)
    except GraphnetError as error:
        print(f"graphnet sweep: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


def _sampler_seed(seed: int | None, done: int, worker: int) -> int | None:
    """Each worker's sampler seed, distinct per worker and per resumption (None: random)."""
    if seed is None:
        return None
    return random.Random(f"{seed}-{done}-{worker}").randrange(2**32)


def run_sweep(source: str | Path | Mapping[str, Any], *, trials: int, out: str | Path, jobs: int = 1,
              storage: str | None = None, prune: bool = False,
              log: Callable[[str], None] = _say) -> SweepResult:
    """Run (or resume) a sweep until its study has `trials` counted trials, then write
    results.csv, best.json and sweep.png in `out` and print the results table."""
    optuna = import_optuna()
    sweep = load_sweep(dict(source) if isinstance(source, Mapping) else source)
    out = make_folder(Path(out).resolve())  # trial folders are named absolute in the study, results.csv, best.json
    url = storage or default_storage(out)
    check_sqlite_file(url)
    name = sweep.spec.study_name or (Path(sweep.source).stem if sweep.source else "sweep")
    study = open_study(optuna, sweep, open_storage(optuna, url), url, name, out)
    done = counted_trials(study)
    shares = quotas(trials - done, jobs)
    interrupted = False
    if not shares:
        log(f"study '{name}' has {done} trials, the {trials} asked for: nothing to run")
    else:
        log(f"study '{name}' in {shown_url(url)}: {done} trials done, running {sum(shares)} more "
            f"in {len(shares)} process{'es' if len(shares) > 1 else ''}")
        plans = [WorkerPlan(str(source) if not isinstance(source, Mapping) else dict(source), url, name, trials,
                            share, str(out), prune, _sampler_seed(sweep.spec.seed, done, i),
                            min(5, max(2, trials // 4)))
                 for i, share in enumerate(shares)]
        with sigterm_interrupts():
            try:
                if len(plans) == 1:
                    work(plans[0], log)
                else:
                    interrupted = run_workers(worker_main, plans, log)
            except KeyboardInterrupt:
                interrupted = True
    return report(study, sweep, out, name, trials, interrupted, log)


def report(study: Any, sweep: Sweep, out: Path, name: str, trials: int, interrupted: bool,
           log: Callable[[str], None]) -> SweepResult:
    """Write results.csv, best.json (when a trial completed) and sweep.png; print the table."""
    rows = trial_rows(study.get_trials(deepcopy=False))
    paths, metric = list(sweep.spec.space), sweep.spec.metric
    write_results_csv(out / RESULTS_FILE, rows, paths, metric)
    best = best_row(rows, sweep.direction)
    if best is not None:
        write_best_json(out / BEST_FILE, best_document(best, metric, sweep.direction, name, trials))
    result = SweepResult(rows, best, out, interrupted)
    note = plot_sweep(out / PLOT_FILE, rows, metric, sweep.direction)
    if note:
        result.notes.append(note)
    log("")
    log(format_table(rows, paths, metric))
    for text in result.notes:
        log(text)
    log(f"wrote {out / RESULTS_FILE}" + (f", {out / BEST_FILE}" if best else "")
        + (f", {out / PLOT_FILE}" if (out / PLOT_FILE).is_file() else ""))
    if best is not None:
        log(f"best: trial {best.number}, {metric} {best.value:.4g}: {best.run}")
    if interrupted:
        log(f"interrupted: {counted_trials(study)} of {trials} trials done; run the same command again to resume")
    return result
