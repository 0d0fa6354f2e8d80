"""graphnet.sweep.trials: which trials count. A rerun's recovery of trials whose worker died (failed
as lost, their run folders cleaned up): tests/system/sweep/test_trials.py."""
from __future__ import annotations

from graphnet.sweep.report import trial_rows
from graphnet.sweep.trials import counted_trials

from tests._support.sweep_cases import optuna  # noqa: F401 (a fixture)


def test_lost_and_interrupted_trials_do_not_count_failed_ones_do(optuna, tmp_path):
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}")
    from optuna.trial import TrialState

    for attrs, state in [({}, TrialState.COMPLETE), ({}, TrialState.PRUNED), ({"error": "bad"}, TrialState.FAIL),
                         ({"interrupted": True}, TrialState.FAIL), ({}, TrialState.FAIL)]:
        trial = study.ask()
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, 0.5 if state == TrialState.COMPLETE else None, state=state)
    assert counted_trials(study) == 3
    assert [row.state for row in trial_rows(study.trials)] == ["complete", "pruned", "failed", "interrupted", "lost"]
