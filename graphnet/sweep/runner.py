"""Running a sweep on Optuna: the study in storage, trials in worker processes, each trial a run folder.

    result = run_sweep("sweep.json", trials=20, jobs=2, out="sweeps/spiral")

The study lives in storage (SQLite `DIR/study.db` by default, or any Optuna RDB URL),
so running the same command again resumes it: `trials` is the total the study should
reach, counting complete, pruned and failed trials (not those cut short by Ctrl-C or
SIGTERM, nor those whose worker was killed: see graphnet.sweep.trials, which also
recovers them at the start of a run).
Each trial trains the run with its sampled values into `DIR/trial-<number>/`. A trial
whose run is refused or whose training fails is marked failed, with the message, and
the sweep goes on.
"""
from __future__ import annotations

import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import GraphnetError
from ..system.console import line_printer
from ..system.fileio import make_folder, remove_stale_temporaries
from ..system.interrupts import (
    die_with_parent,
    interrupted_exit_code,
    raise_interrupt,
    stop_noted,
    stop_signals_interrupt,
)
from ..training.tracking import end_parent_run, start_parent_run
from .report import (
    BEST_FILE,
    PLOT_FILE,
    RESULTS_FILE,
    TrialRow,
    best_document,
    best_row,
    format_table,
    plot_sweep,
    trial_rows,
    write_best_json,
    write_results_csv,
)
from .space import Distribution, Sweep, epoch_metric, load_sweep
from .storage import (
    NEEDS_OPTUNA,
    SweepError,
    check_sqlite_file,
    default_storage,
    import_optuna,
    open_storage,
    open_sweep_study,
    shown_url,
)
from .trials import WORKER_ATTR, counted_trials, recover_lost_trials, worker_label
from .workers import quotas, run_workers

MLFLOW_PARENT_ATTR = "mlflow_parent_run_id"  # the study's user attribute: the MLflow run its trials are children of

__all__ = ["NEEDS_OPTUNA", "SweepError", "SweepResult", "counted_trials", "run_sweep"]


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
    parent: int  # the sweep's process id: the worker dies with it


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
        trial.set_user_attr(WORKER_ATTR, worker_label())  # a rerun tells a killed worker's trial by it
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
            if stop_noted():  # a signal a library caught, failing its cleanup: the trial was stopped
                trial.set_user_attr("interrupted", True)
                raise KeyboardInterrupt from error
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
        parent = trial.study.user_attrs.get(MLFLOW_PARENT_ATTR)
        if run.train.mlflow is not None and parent:  # each trial a child run of the sweep's
            mlflow = run.train.mlflow.model_copy(update={"parent_run_id": parent})
            run = run.model_copy(update={"train": run.train.model_copy(update={"mlflow": mlflow})})
        on_epoch = self._reporter(trial, run.train.epochs) if self.prune else None
        return train(run, out=folder, log=None, progress=False, on_epoch=on_epoch)

    def _reporter(self, trial: Any, epochs: int) -> Callable[[Any], None]:
        """Report each epoch's metric; from epoch `warmup_epochs(epochs)` of this trial's own run
        on, ask the pruner whether to stop."""
        name, warmup = epoch_metric(self.sweep.spec.metric), warmup_epochs(epochs)

        def report(record: Any) -> None:
            value = getattr(record, name, None)
            if value is None or not math.isfinite(value):
                return
            trial.report(value, record.epoch)
            if record.epoch >= warmup and trial.should_prune():
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


def warmup_epochs(epochs: int) -> int:
    """The first epoch at which a trial of `epochs` epochs may be pruned: max(1, epochs // 5).
    Early epochs are too noisy to judge a run by; each trial counts from its own epochs
    (when `train.epochs` is swept, a 20-epoch trial may be pruned from epoch 4 on)."""
    return max(1, epochs // 5)


def make_pruner(optuna: Any, prune: bool, startup_trials: int) -> Any:
    """The median pruner, or none. It prunes once `startup_trials` trials have finished; the
    warm-up is each trial's own (Objective asks it only from `warmup_epochs` on)."""
    if not prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)


def work(plan: WorkerPlan, log: Callable[[str], None]) -> None:
    """Run up to `plan.quota` trials of the study (stopping once it has `plan.target`)."""
    optuna = import_optuna()
    sweep = load_sweep(plan.source)
    storage = open_storage(optuna, plan.storage)
    study = optuna.load_study(study_name=plan.study_name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=plan.sampler_seed),
                              pruner=make_pruner(optuna, plan.prune, plan.startup_trials))

    def stop_at_target(study: Any, trial: Any) -> None:
        if counted_trials(study) >= plan.target:
            study.stop()

    study.optimize(Objective(sweep, Path(plan.out), plan.prune, log), n_trials=plan.quota, catch=(TrialFailed,),
                   callbacks=[stop_at_target], gc_after_trial=False)


_say = line_printer("graphnet sweep")  # a closed stdout (`| head`) does not stop the sweep


def worker_main(plan: WorkerPlan) -> None:
    """A worker process: Ctrl-C and SIGTERM stop its trial as in `graphnet train` (exit 130, or
    143 after SIGTERM). It starts with Ctrl-C ignored (see graphnet.sweep.workers), so that one
    during start-up prints no traceback, and dies with the sweep: SIGTERM when the sweep's
    process is gone, even SIGKILLed (graphnet.system.interrupts.die_with_parent: prctl on Linux, a
    watcher thread elsewhere)."""
    import sys

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, raise_interrupt)
    try:
        die_with_parent(plan.parent, signal.SIGTERM)
        work(plan, line_printer("graphnet sweep", notice=False))  # the parent says it once
    except KeyboardInterrupt:
        sys.exit(interrupted_exit_code())
    except GraphnetError as error:
        print(f"graphnet sweep: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception:
        if stop_noted():  # the signal hit optuna's storage mid-commit, whose cleanup then failed
            sys.exit(interrupted_exit_code())
        raise


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
    study = open_sweep_study(optuna, sweep, url, name, out)
    remove_stale_temporaries(out, [RESULTS_FILE, BEST_FILE, PLOT_FILE])
    recover_lost_trials(optuna, study, log)
    mlflow = sweep.run.train.mlflow
    if mlflow is not None and not study.user_attrs.get(MLFLOW_PARENT_ATTR):  # once per study, resumed or not
        study.set_user_attr(MLFLOW_PARENT_ATTR, start_parent_run(mlflow, name, {"graphnet.sweep": str(out)}))
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
                            min(5, max(2, trials // 4)), os.getpid())
                 for i, share in enumerate(shares)]
        with stop_signals_interrupt():  # SIGINT too, even if ignored at start (a sweep started with &)
            try:
                if len(plans) == 1:
                    work(plans[0], log)
                else:
                    interrupted = run_workers(worker_main, plans, log)
            except KeyboardInterrupt:
                interrupted = True
        recover_lost_trials(optuna, study, log)  # a worker killed meanwhile: its trial is lost, not running
    if mlflow is not None:
        end_parent_run(mlflow, study.user_attrs[MLFLOW_PARENT_ATTR], interrupted)
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
