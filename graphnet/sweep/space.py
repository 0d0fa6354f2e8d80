"""SWEEP.json: a run, a search space keyed by paths into it, the metric to optimize.

    {
      "run": "specs/spiral_mlp.json",
      "space": {
        "train.optimizer.learning_rate": {"log_uniform": [1e-3, 1e-1]},
        "network.nodes[0].units": {"choice": [16, 64, 128]}
      },
      "metric": "val_accuracy",
      "direction": "maximize"
    }

`run` is a run spec, or the path of a run file (relative to SWEEP.json's folder, else
to the working folder) or a zoo name. A path walks the run document as validated,
defaults included: dotted keys and `[i]` list indices. Everything is checked before
any trial runs, and each problem is a SpecError located in SWEEP.json
(`space."network.nodes[7].units": the run has no nodes[7] (it has 3 nodes)`).
"""
from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import Field, ValidationError, model_validator

from ..errors import SpecError, did_you_mean
from ..ops.base import SpecModel
from ..ops.tasks import Task, class_count, task_of
from ..ops.tasks import metric_names as task_metric_names
from ..spec import RunSpec, load, parse_json, parse_run, read_spec_text

KINDS = ("log_uniform", "uniform", "int", "choice")
Pair = Annotated[list[float], Field(min_length=2, max_length=2)]
IntPair = Annotated[list[int], Field(min_length=2, max_length=2)]
PathPart = str | int
MAX_STEPS = 1e15  # values of a uniform range with a step: finer than float precision can tell apart
_PART = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


class Distribution(SpecModel):
    """Where a value is drawn from: exactly one of `log_uniform: [lo, hi]`, `uniform: [lo, hi]`
    (optional `step`), `int: [lo, hi]` (optional `step`, or `log`) or `choice: [values]`."""

    log_uniform: Pair | None = None
    uniform: Pair | None = None
    int_range: IntPair | None = Field(None, alias="int")
    choice: list[Any] | None = Field(None, min_length=1)
    step: float | None = Field(None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> "Distribution":
        given = [kind for kind in KINDS if self.bounds_or_choices(kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {', '.join(given) or 'none'})")
        kind = given[0]
        if kind == "choice":
            _check_choices(self.choice or [])
        else:
            lo, hi = self.bounds_or_choices(kind)
            if not lo < hi:
                raise ValueError(f"{kind}: the low end must be below the high end, got [{lo:g}, {hi:g}]")
            if (kind == "log_uniform" or self.log) and lo <= 0:
                raise ValueError(f"{kind}: a log scale needs a low end above 0, got {lo:g}")
            if kind == "uniform" and not math.isfinite(hi - lo):
                raise ValueError(f"uniform: the range [{lo:g}, {hi:g}] is too wide to draw from (its width "
                                 "overflows a float): narrow it, or use log_uniform for positive values")
            if self.step is not None and self.step > hi - lo:
                raise ValueError(f"{kind}: 'step' {self.step:g} is larger than the range [{lo:g}, {hi:g}]: "
                                 f"{lo:g} would be the only value")
            if kind == "uniform" and self.step is not None and (hi - lo) / self.step > MAX_STEPS:
                raise ValueError(f"uniform: 'step' {self.step:g} cuts [{lo:g}, {hi:g}] into more than {MAX_STEPS:g} "
                                 "values: give a larger step, or none")
        if self.step is not None and kind not in ("uniform", "int"):
            raise ValueError(f"'step' goes with uniform or int, not {kind}")
        if self.step is not None and kind == "int" and self.step != int(self.step):
            raise ValueError(f"int: 'step' must be a whole number, got {self.step:g}")
        if self.log and kind != "int":
            raise ValueError(f"'log' goes with int (use log_uniform for floats), not {kind}")
        if self.log and self.step not in (None, 1):
            raise ValueError("int: 'log' and a 'step' other than 1 don't go together")
        return self

    def bounds_or_choices(self, kind: str) -> Any:
        return self.int_range if kind == "int" else getattr(self, kind)

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if self.bounds_or_choices(kind) is not None)


def _check_choices(values: list[Any]) -> None:
    for value in values:
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise ValueError(f"choice: values are numbers, strings, booleans or null, got {json.dumps(value)}")
    if len({json.dumps(value) for value in values}) != len(values):
        raise ValueError("choice: a value is listed twice")


class SweepSpec(SpecModel):
    """A SWEEP.json document, as validated."""

    schema_ref: str | None = Field(None, alias="$schema")
    run: str | dict[str, Any]
    space: dict[str, Distribution] = Field(min_length=1)
    metric: str = Field(min_length=1)
    direction: Literal["maximize", "minimize"] | None = None
    study_name: str | None = Field(None, min_length=1, max_length=200)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


# ---- metrics ---------------------------------------------------------------------------------


def metric_names(task: Task | None, classes: int | None = None) -> list[str]:
    """The metrics a run of `task` (of `classes` classes) writes to metrics.json or history.json,
    by which a trial is judged: those of the model the run serves (with early stopping, its best epoch's)."""
    return [f"{split}_{score}" for score in task_metric_names(task, classes) for split in ("val", "test", "train")] + \
        ["val_loss", "test_loss", "train_loss", "final_loss"]


def default_direction(metric: str) -> Literal["maximize", "minimize"]:
    """minimize for losses and errors (loss, log loss, RMSE, MAE), maximize for the scores."""
    return "minimize" if metric.endswith(("loss", "_rmse", "_mae")) else "maximize"


def epoch_metric(metric: str) -> str:
    """The per-epoch record field that tracks `metric` (what pruning compares between trials):
    the metric itself, or its validation (or training) counterpart for test_* and final_loss."""
    if metric == "final_loss":
        return "train_loss"
    return "val_" + metric.removeprefix("test_") if metric.startswith("test_") else metric


# ---- paths into the run ----------------------------------------------------------------------


def parse_path(text: str) -> list[PathPart]:
    """`network.nodes[0].units` -> ['network', 'nodes', 0, 'units']; ValueError if malformed."""
    parts: list[PathPart] = []
    for piece in text.split("."):
        match = _PART.fullmatch(piece)
        if match is None:
            raise ValueError("not a path into the run: write keys with dots and list indices as [i], "
                             "e.g. network.nodes[0].units")
        parts.append(match.group(1))
        parts.extend(int(index) for index in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


def format_path(parts: list[PathPart]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else (f".{part}" if i else part)
                   for i, part in enumerate(parts))


def check_path(document: Any, parts: list[PathPart]) -> None:
    """ValueError naming the first step of `parts` that `document` (the run, defaults included)
    does not have, or saying that the path ends at an object or list rather than a value."""
    here = document
    for i, part in enumerate(parts):
        where = format_path(parts[:i])
        if isinstance(part, int):
            if not isinstance(here, list):
                raise ValueError(f"the run's {where} is not a list")
            if part >= len(here):
                items = parts[i - 1] if isinstance(parts[i - 1], str) else "entries"
                raise ValueError(f"the run has no {format_path(parts[:i + 1])} (it has {len(here)} {items})")
        else:
            if not isinstance(here, dict):
                raise ValueError(f"the run's {where} is a value, it has no '{part}'")
            if part not in here:
                inside = f" in {where}" if where else ""
                raise ValueError(f"the run has no '{part}'{inside}{did_you_mean(part, here)}")
        here = here[part]
    if isinstance(here, dict):
        raise ValueError(f"the run's {format_path(parts)} is an object: name one of its fields "
                         f"({', '.join(here)})")
    if isinstance(here, list):
        raise ValueError(f"the run's {format_path(parts)} is a list: name one entry, e.g. "
                         f"{format_path(parts)}[0]")


def set_value(sparse: dict[str, Any], full: dict[str, Any], parts: list[PathPart], value: Any) -> None:
    """Set `value` at `parts` in `sparse` (the run as written), copying what it leaves out
    (defaults) from `full` (the same run, defaults included) along the way."""
    here, there = sparse, full
    for part in parts[:-1]:
        if isinstance(here, dict) and part not in here:
            here[part] = copy.deepcopy(there[part])
        here, there = here[part], there[part]
    here[parts[-1]] = value


# ---- a loaded sweep ---------------------------------------------------------------------------


@dataclass
class Sweep:
    """A validated sweep: its spec, the base run, and where it came from."""

    spec: SweepSpec
    run: RunSpec
    source: str | None = None

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return self.spec.direction or default_direction(self.spec.metric)

    def paths(self) -> dict[str, list[PathPart]]:
        return {text: parse_path(text) for text in self.spec.space}

    def run_with(self, values: Mapping[str, Any]) -> RunSpec:
        """The base run with `values` ({path: value}) set, validated as any run file
        (SpecError naming the field if the network refuses a value)."""
        sparse = json.loads(self.run.to_json())
        full = json.loads(self.run.model_dump_json(by_alias=True))
        for text, value in values.items():
            set_value(sparse, full, parse_path(text), value)
        return parse_run(sparse)


def load_sweep(source: str | Path | Mapping[str, Any]) -> Sweep:
    """Read and validate a SWEEP.json file (or a parsed document); SpecError with locations."""
    if isinstance(source, Mapping):
        document, name, folder = dict(source), None, Path(".")
    else:
        name = str(source)
        document, folder = parse_json(read_spec_text(source), name), Path(source).parent
    if not isinstance(document, dict):
        raise SpecError(f"a sweep is a JSON object, got {type(document).__name__}", name)
    try:
        spec = SweepSpec.model_validate(document)
    except ValidationError as error:
        problems = [_problem(item) for item in error.errors(include_url=False)]
        raise SpecError(list(dict.fromkeys(problems)), name) from None
    run = _load_run(spec.run, folder, name)
    _check_against_run(spec, run, name)
    return Sweep(spec, run, name)


def _load_run(run: str | dict[str, Any], folder: Path, source: str | None) -> RunSpec:
    if isinstance(run, dict):
        try:
            return parse_run(run)
        except SpecError as error:
            raise SpecError([(format_path(["run", *_split(loc)]), message) for loc, message in error.problems],
                            source) from None
    beside = folder / run
    loaded = load(beside if not Path(run).is_absolute() and beside.is_file() else run)
    if not isinstance(loaded, RunSpec):
        raise SpecError([("run", f"'{run}' is a network spec; a sweep needs a run spec "
                                 "(\"network\" and \"train\")")], source)
    return loaded


def _split(location: str) -> list[PathPart]:
    try:
        return parse_path(location) if location else []
    except ValueError:
        return [location]


def _check_against_run(spec: SweepSpec, run: RunSpec, source: str | None) -> None:
    problems = []
    if run.network.loss is None:
        problems.append(("run.network.loss", "a sweep trains the run, which needs a loss node"))
    full = json.loads(run.model_dump_json(by_alias=True))
    for text in spec.space:
        try:
            check_path(full, parse_path(text))
        except ValueError as error:
            problems.append((f"space.{json.dumps(text)}", str(error)))
    task = task_of(run.network)
    known = metric_names(task, class_count(run.network))
    if spec.metric not in known:
        problems.append(("metric", f"a {task or 'classification'} run has no metric '{spec.metric}'"
                                   f"{did_you_mean(spec.metric, known)} (known: {', '.join(known)})"))
    if problems:
        raise SpecError(problems, source)


def _problem(item: dict[str, Any]) -> tuple[str, str]:
    """A pydantic error on a SWEEP.json document as (location, message)."""
    loc = [part for part in item["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
    in_space = len(loc) >= 2 and loc[0] == "space"
    location = "space" + "".join([f".{json.dumps(loc[1])}"] + [f"[{p}]" if isinstance(p, int) else f".{p}"
                                                               for p in loc[2:]]) if in_space \
        else format_path([p if isinstance(p, (int, str)) else str(p) for p in loc])
    kind, message = item["type"], item["msg"]
    if loc[:1] == ["run"]:
        return "run", "give a run spec (an object), or the path of a run file or a zoo name"
    if kind == "extra_forbidden":
        model = Distribution if in_space else SweepSpec
        fields = [field.alias or name for name, field in model.model_fields.items()]
        return location, f"unknown field '{loc[-1]}'{did_you_mean(str(loc[-1]), fields)}"
    if kind == "missing":
        return location, f"missing required field '{loc[-1]}'"
    if kind == "literal_error" and isinstance(item.get("input"), str):
        message += did_you_mean(item["input"], ["maximize", "minimize"])
    message = message.removeprefix("Value error, ")
    return location, message[:1].lower() + message[1:]
