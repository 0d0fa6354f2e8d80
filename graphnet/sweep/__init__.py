"""Hyperparameter sweeps on Optuna: `graphnet sweep SWEEP.json --trials K --jobs J --out DIR`.

    from graphnet.sweep import run_sweep
    result = run_sweep("sweep.json", trials=20, jobs=2, out="sweeps/spiral")
    result.best.run          # the best trial's run folder

`space` reads and checks SWEEP.json (no Optuna needed), `storage` checks and opens
the study's storage, `runner` runs the study, `workers` its worker processes, `trials`
says which trials count and recovers those whose worker died, `report` writes
results.csv, best.json and sweep.png.
"""
from __future__ import annotations

from .report import TrialRow
from .runner import NEEDS_OPTUNA, SweepError, SweepResult, run_sweep
from .space import Distribution, Sweep, SweepSpec, load_sweep

__all__ = ["Distribution", "NEEDS_OPTUNA", "Sweep", "SweepError", "SweepResult", "SweepSpec", "TrialRow",
           "load_sweep", "run_sweep"]
