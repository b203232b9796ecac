"""ASHA per group: one Tune scheduler that keeps a separate ASHAScheduler (rungs, cutoffs) for
each Optuna group, so a group's trials are only ever compared with each other.

Every ready group's trials share one Tune run (schedule/searcher.py); one ASHAScheduler over all
of them would stop an XXL trial for scoring below a base-size trial of another task. Each trial
carries its group in its config (`TrialMeta.group`); its results go to that group's
ASHAScheduler, created when the group's first trial is added. Fixed stages (no group) always
continue. Which trial runs next is Tune's FIFO choice, as with a lone ASHAScheduler.
"""

from __future__ import annotations

from collections.abc import Callable

from xscale.schedule.searcher import TrialMeta


def grouped_asha(make: Callable[[], object]):
    """A Tune TrialScheduler routing each Optuna trial to its group's `make()` (an
    ASHAScheduler with metric and mode set)."""
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class GroupedASHA(FIFOScheduler):
        def __init__(self):
            super().__init__()
            self.groups: dict[str, object] = {}  # group key -> its ASHAScheduler
            self.of_trial: dict[str, object] = {}  # trial id -> its group's scheduler

        def _scheduler(self, trial):
            if trial.trial_id in self.of_trial:
                return self.of_trial[trial.trial_id]
            meta, _ = TrialMeta.split(trial.config or {})
            if meta.group is None:
                return None
            if meta.group not in self.groups:
                self.groups[meta.group] = make()
            self.of_trial[trial.trial_id] = self.groups[meta.group]
            return self.groups[meta.group]

        def on_trial_add(self, tune_controller, trial):
            if (s := self._scheduler(trial)) is not None:
                s.on_trial_add(tune_controller, trial)

        def on_trial_result(self, tune_controller, trial, result):
            if (s := self._scheduler(trial)) is None:
                return TrialScheduler.CONTINUE
            return s.on_trial_result(tune_controller, trial, result)

        def on_trial_complete(self, tune_controller, trial, result):
            if (s := self.of_trial.pop(trial.trial_id, None)) is not None:
                s.on_trial_complete(tune_controller, trial, result)

        def on_trial_error(self, tune_controller, trial):
            if (s := self.of_trial.pop(trial.trial_id, None)) is not None:
                s.on_trial_error(tune_controller, trial)

        def on_trial_remove(self, tune_controller, trial):
            if (s := self.of_trial.pop(trial.trial_id, None)) is not None:
                s.on_trial_remove(tune_controller, trial)

        def debug_string(self) -> str:
            return f"ASHA per group ({len(self.groups)} groups)"

    return GroupedASHA()


def asha_factory(scheduler, metric: str, mode: str):
    """`make` for grouped_asha from a sweep's `scheduler:` settings."""
    from ray.tune.schedulers import ASHAScheduler

    def make():
        return ASHAScheduler(
            time_attr="training_iteration",
            metric=metric,
            mode=mode,
            max_t=scheduler.max_t,
            grace_period=scheduler.grace_period,
            reduction_factor=scheduler.reduction_factor,
        )

    return make
