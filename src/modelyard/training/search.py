"""``auto``: a time-budgeted hyperparameter search before a job's real run.

A job with ``auto: {"time_budget_s": 300}`` (``modelyard train --time-budget 5m``) spends
its budget in two parts, both in the worker:

1. **Trials.** An Optuna study (TPE sampler, :class:`optuna.pruners.MedianPruner`) over
   the few values that matter, around the data-derived recommendation
   (:func:`~modelyard.training.advice.recommend`): the learning rate (a third to three
   times the recommended one, log scale), the batch size (half, as recommended, double)
   and the epochs (about half, as recommended, half as many again). Values the user set
   are never searched. The first trial is the recommendation itself, so the search can
   only keep or beat it. Each trial trains a fresh copy of the base model on a subset of
   the training split (:data:`TRIAL_TRAIN_SHARE`, within :data:`TRIAL_MIN_TRAIN` and
   :data:`TRIAL_MAX_TRAIN` examples) and is evaluated on (at most
   :data:`TRIAL_MAX_EVAL` examples of) the validation split at
   :data:`TRIAL_EVALUATIONS` points of its training; each evaluation is reported to the
   pruner, which stops a trial below the median of the earlier ones at the same point.
   The test split is never seen. Trials write nothing but their records: no checkpoint,
   no model, nothing in the model registry (their working folders are deleted).
2. **The final run**, on the whole training split, with the best trial's values (each
   recorded with the reason "best of N trials" in ``config.recommended`` and in
   ``config.search``).

The time: the trials measure the throughput (seconds per training example at each batch
size, per evaluated example, to load and to save the model), from which the final run's
time is estimated. The first trial may take :data:`FIRST_TRIAL_SHARE` of the budget (it
is stopped there); after it, the search stops starting trials when the next one and the
final run would not fit in what is left, so the trials take whatever the final run does
not need. When the final run alone would not fit, no more trials start and its epochs are
trimmed to fit (the reason says so). A last guard, :func:`time_limit`, stops the final
run's training when only the time to evaluate, report and save is left (the best
checkpoint so far is restored and saved), so the job ends within its budget, from the
worker's start, give or take the estimate's error on that last part.

A resumed job (its worker died in the final run) does not search again: the values stored
in ``config.search`` stand (:func:`apply_chosen`), and its budget restarts with the worker.
"""

from __future__ import annotations

import gc
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelyard.training.advice import CLAMPS, checkpoint_every
from modelyard.training.config import Recommendation, SearchRecord, TrainingConfig, TrialRecord
from modelyard.training.tasks import get_task
from modelyard.training.timing import (
    Budget,
    Throughput,
    estimate_final,
    fitting_epochs,
    split_sizes,
    steps_of,
)

if TYPE_CHECKING:
    from modelyard.training.worker import EventWriter

__all__ = [
    "FIRST_TRIAL_SHARE",
    "MAX_TRIALS",
    "TRIAL_EVALUATIONS",
    "apply_chosen",
    "best_trial",
    "run_search",
    "search_space",
    "trial_sizes",
]

logger = logging.getLogger("modelyard.training.search")

#: The share of the budget the first trial may use, before anything is measured.
FIRST_TRIAL_SHARE = 0.3
#: No more trials than this, however much time is left. The budget is what ends a search
#: (a user who gives five minutes expects them used); this only bounds the records of a
#: tiny dataset whose trials take a fraction of a second.
MAX_TRIALS = 200
#: Evaluations per trial (each reported to the pruner).
TRIAL_EVALUATIONS = 4
#: The trials train on this share of the training split, within these bounds (examples).
TRIAL_TRAIN_SHARE = 0.2
TRIAL_MIN_TRAIN = 128
TRIAL_MAX_TRAIN = 2000
#: The trials are evaluated on at most this many validation examples.
TRIAL_MAX_EVAL = 300
#: Trials before the pruner may prune, and evaluations of a trial before it may.
PRUNER_STARTUP_TRIALS = 2
PRUNER_WARMUP_EVALUATIONS = 2
#: Random trials before the TPE sampler models the results.
SAMPLER_STARTUP_TRIALS = 4
TRIALS_DIR = "trials"


def trial_sizes(train: int, held_out: int) -> tuple[int, int]:
    """The examples a trial trains on and is evaluated on."""
    share = math.ceil(train * TRIAL_TRAIN_SHARE)
    return min(train, max(TRIAL_MIN_TRAIN, min(TRIAL_MAX_TRAIN, share))), min(
        held_out, TRIAL_MAX_EVAL
    )


def _choices(values: list[float], low: float, high: float, integer: bool) -> list[Any]:
    kept = sorted({min(high, max(low, value)) for value in values})
    return [int(value) for value in kept] if integer else kept


def search_space(config: TrainingConfig, train_examples: int) -> dict[str, Any]:
    """Optuna distributions over the values the user did not set, around ``config``'s
    (the recommendation's): name → distribution."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    space: dict[str, Any] = {}
    names = config.searchable()
    if "learning_rate" in names:
        low, high = CLAMPS["learning_rate"]
        rate = config.learning_rate
        space["learning_rate"] = FloatDistribution(
            max(low, min(rate, rate / 3)), min(high, max(rate, rate * 3)), log=True
        )
    if "batch_size" in names:
        batch = config.batch_size
        largest = max(batch, min(int(CLAMPS["batch_size"][1]), train_examples))
        choices = _choices([batch // 2, batch, batch * 2], 1, largest, integer=True)
        space["batch_size"] = CategoricalDistribution(choices)
    if "epochs" in names:
        epochs = config.epochs
        low, high = CLAMPS["epochs"]
        values = [float(round(epochs / 2)), epochs, float(round(epochs * 1.5))]
        kept = _choices(values, min(low, epochs), max(high, epochs), integer=False)
        space["epochs"] = CategoricalDistribution(kept)
    return space


def _describe(distribution: Any) -> str:
    if hasattr(distribution, "choices"):
        return " / ".join(f"{choice:g}" for choice in distribution.choices)
    scale = " (log scale)" if distribution.log else ""
    return f"{distribution.low:.3g} to {distribution.high:.3g}{scale}"


@dataclass
class _Outcome:
    best: float | None
    values: list[float]
    state: Literal["complete", "pruned", "failed"]
    note: str | None
    seconds: float


def _head(dataset: Any, count: int) -> Any:
    """The first ``count`` rows (the splits are shuffled already)."""
    if len(dataset) <= count:
        return dataset
    if hasattr(dataset, "select"):  # a datasets.Dataset (TRL's trainers)
        return dataset.select(range(count))
    return dataset[:count]


def _watcher(
    metric: str,
    report: Callable[[float, int], bool],
    deadline: float,
    stop: dict[str, bool],
) -> Any:
    from transformers import TrainerCallback

    class Watch(TrainerCallback):
        """Reports each evaluation to the study; stops a pruned, late or cancelled trial."""

        def __init__(self) -> None:
            self.values: list[float] = []
            self.eval_seconds = 0.0
            self.evaluated_at = -1
            self.pruned = False
            self.late = False

        def on_evaluate(
            self, args: Any, state: Any, control: Any, metrics: Any = None, **_: Any
        ) -> None:
            metrics = metrics or {}
            self.eval_seconds += float(metrics.get("eval_runtime") or 0.0)
            self.evaluated_at = state.global_step
            value = metrics.get(metric)
            if value is None or not math.isfinite(float(value)):
                return
            self.values.append(float(value))
            if report(float(value), len(self.values)):
                self.pruned = True
                control.should_training_stop = True

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if stop["requested"]:
                control.should_training_stop = True
            elif time.monotonic() > deadline:
                self.late = True
                control.should_training_stop = True

    return Watch()


def _run_trial(
    config: TrainingConfig,
    examples: list[dict[str, Any]],
    base_dir: Path,
    device: str,
    trial_dir: Path,
    sizes: tuple[int, int],
    report: Callable[[float, int], bool],
    deadline: float,
    stop: dict[str, bool],
    speed: Throughput,
) -> _Outcome:
    """Train one trial on the subset; its measurements go into ``speed``."""
    from modelyard.training.worker import _trainer, _training_arguments

    task = get_task(config.task)
    began = time.monotonic()
    prepared = task.prepare(config, examples, base_dir)
    train_count, eval_count = sizes
    total = steps_of(config, train_count)
    every = max(1, math.ceil(total / TRIAL_EVALUATIONS))
    arguments = _training_arguments(
        config,
        trial_dir,
        device,
        prepared.arguments_class,
        prepared.arguments_extra,
        None,
        overrides={
            "eval_strategy": "steps",
            "eval_steps": every,
            "save_strategy": "no",
            "load_best_model_at_end": False,
            "logging_steps": every,
        },
    )
    greater = task.greater_is_better
    watch = _watcher(task.best_metric, report, deadline, stop)
    trainer = _trainer(prepared, arguments, [watch])
    trainer.train_dataset = _head(trainer.train_dataset, train_count)
    trainer.eval_dataset = _head(trainer.eval_dataset, eval_count)
    trained_from = time.monotonic()
    speed.setup.append(trained_from - began)
    try:
        trainer.train()
        finished = not (watch.pruned or watch.late or stop["requested"])
        if finished and watch.evaluated_at != trainer.state.global_step:
            trainer.evaluate()  # the last point, when the steps did not end on one
        seconds = time.monotonic() - trained_from
        examples_seen = trainer.state.global_step * config.batch_size
        examples_seen *= config.gradient_accumulation_steps
        evaluations = max(1, len(watch.values))
        if examples_seen:
            per = max(1e-6, seconds - watch.eval_seconds) / examples_seen
            speed.train.setdefault(config.batch_size, []).append(per)
        if watch.eval_seconds and eval_count:
            speed.evaluation.append(watch.eval_seconds / (evaluations * eval_count))
        if speed.save is None and not stop["requested"]:
            saved = time.monotonic()
            trainer.save_model(str(trial_dir / "save-probe"))
            speed.save = time.monotonic() - saved
    finally:
        del trainer, prepared
        gc.collect()
        shutil.rmtree(trial_dir, ignore_errors=True)
    values = watch.values
    best = (max(values) if greater else min(values)) if values else None
    state: Literal["complete", "pruned", "failed"]
    if watch.pruned:
        state = "pruned"
        note = (
            f"pruned after {len(values)} of {TRIAL_EVALUATIONS} evaluations: worse than the "
            "median of the earlier trials at that point"
        )
    elif watch.late or stop["requested"]:
        state = "pruned"
        note = "stopped: the search's time ran out" if watch.late else "stopped: cancelled"
    else:
        state, note = "complete", None
    return _Outcome(best, values, state, note, round(time.monotonic() - began, 3))


def best_trial(record: SearchRecord) -> TrialRecord | None:
    """The complete trial with the best metric; of equal ones, the fastest (the cheaper
    final run: a tie on a small validation split says nothing about the rest)."""
    complete = [t for t in record.trials if t.state == "complete" and t.metric is not None]
    if not complete:
        return None
    sign = 1.0 if record.greater_is_better else -1.0
    top = max(sign * (t.metric or 0.0) for t in complete)
    tied = [t for t in complete if sign * (t.metric or 0.0) >= top - 1e-9]
    return min(tied, key=lambda t: (t.seconds, t.number))


def _with_schedule(config: TrainingConfig, values: dict[str, Any], train: int) -> dict[str, Any]:
    """``values`` and, when the user did not set it, the evaluation interval for the
    schedule they make (about ten evaluations)."""
    updated = config.model_copy(update=values)
    if not config.is_set("checkpoint_steps"):
        values = {**values, "checkpoint_steps": checkpoint_every(steps_of(updated, train))}
    return values


def apply_chosen(config: TrainingConfig, record: SearchRecord) -> TrainingConfig:
    """``config`` with the search's chosen values (and their reasons) applied."""
    values = {name: item.value for name, item in record.chosen.items()}
    recommended = {**(config.recommended or {}), **record.chosen}
    return config.model_copy(update={**values, "recommended": recommended, "search": record})


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _chosen(
    config: TrainingConfig,
    record: SearchRecord,
    best_params: dict[str, Any],
    trimmed: float | None,
    schedule: dict[str, Any],
) -> dict[str, Recommendation]:
    trials = len(record.trials)
    best = next(t for t in record.trials if t.number == record.best_trial)
    first = record.trials[0]
    scored = (
        f"{record.metric} {best.metric:.4g} on the validation subset"
        if best.metric is not None
        else record.metric
    )
    tied = [
        t
        for t in record.trials
        if t.state == "complete" and t.metric is not None and best.metric is not None
        if abs(t.metric - best.metric) <= 1e-9
    ]
    if len(tied) > 1:
        scored += f", the fastest of the {len(tied)} that scored it"
    if best.number != first.number and first.metric is not None:
        scored += f"; the recommendation scored {first.metric:.4g}"
        if first.state != "complete":
            scored += " before it was stopped"
    elif best.number == first.number:
        scored += "; the recommendation itself"
    plural = "trial" if trials == 1 else "trials"
    chosen: dict[str, Recommendation] = {}
    for name, value in best_params.items():
        reason = f"best of {trials} {plural} ({scored})"
        if name == "epochs" and trimmed is not None:
            reason += f"; {trimmed:.3g} passes fit the time budget (the best trial had {value:g})"
            value = trimmed
        chosen[name] = Recommendation(value=value, reason=reason[:300])
    if "checkpoint_steps" in schedule:
        chosen["checkpoint_steps"] = Recommendation(
            value=schedule["checkpoint_steps"],
            reason="about 10 evaluations (each with a checkpoint) over the chosen schedule",
        )
    return chosen


def run_search(
    config: TrainingConfig,
    examples: list[dict[str, Any]],
    base_dir: Path,
    device: str,
    work_dir: Path,
    events: EventWriter,
    stop: dict[str, bool],
    budget: Budget,
) -> TrainingConfig:
    """Run the trials and return ``config`` with the best values (see the module's notes);
    reported as ``trial`` events and one ``search`` event (with the config)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task = get_task(config.task)
    sizes = split_sizes(config, examples)
    subset = trial_sizes(sizes[0], sizes[1])
    space = search_space(config, subset[0])
    center = {name: getattr(config, name) for name in space}
    study = optuna.create_study(
        direction="maximize" if task.greater_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(
            seed=config.seed, n_startup_trials=SAMPLER_STARTUP_TRIALS
        ),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EVALUATIONS
        ),
    )
    study.enqueue_trial(center)
    assert config.auto is not None
    total = config.auto.time_budget_s
    record = SearchRecord(
        metric=task.best_metric,
        greater_is_better=task.greater_is_better,
        time_budget_s=total,
        space={name: _describe(distribution) for name, distribution in space.items()},
        trial_train_examples=subset[0],
        trial_eval_examples=subset[1],
        trials=[],
    )
    events.emit("state", state="running", phase="search", time_budget_s=total)
    speed = Throughput()
    best_config = config
    stopped = f"{MAX_TRIALS} trials (the most the search runs)"
    while len(record.trials) < MAX_TRIALS:
        if stop["requested"]:
            stopped = "cancelled"
            break
        final_need = estimate_final(best_config, sizes, speed).total if speed.known else None
        if final_need is None:  # the first trial: nothing is measured yet
            search_end = min(total, budget.elapsed() + total * FIRST_TRIAL_SHARE)
        else:
            search_end = total - final_need
        trial = study.ask(space)
        trial_config = config.model_copy(update={**trial.params, "early_stopping_patience": 0})
        if speed.known:
            guess = speed.load() + steps_of(trial_config, subset[0]) * trial_config.batch_size * (
                speed.per_example(trial_config.batch_size)
            )
            guess += TRIAL_EVALUATIONS * subset[1] * speed.per_eval_example()
            if budget.elapsed() + guess > search_end:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                stopped = (
                    f"the next trial (about {guess:.0f} s) and the final run (about "
                    f"{final_need or 0:.0f} s) would not fit in the {budget.left():.0f} s left"
                )
                break
        elif budget.elapsed() > search_end:
            stopped = "the budget was spent before the first trial could start"
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break

        def report(value: float, point: int, trial: Any = trial) -> bool:
            trial.report(value, point)
            return bool(trial.should_prune())

        try:
            outcome = _run_trial(
                trial_config,
                examples,
                base_dir,
                device,
                work_dir / TRIALS_DIR / str(trial.number),
                subset,
                report,
                budget.started + search_end,
                stop,
                speed,
            )
        except Exception as exc:  # a trial that cannot train (memory) is recorded
            logger.warning("search trial %s failed", trial.number, exc_info=True)
            outcome = _Outcome(None, [], "failed", f"{type(exc).__name__}: {exc}"[:300], 0.0)
        if outcome.state == "complete" and outcome.best is not None:
            study.tell(trial, outcome.best)
        elif outcome.state == "pruned" and outcome.values:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        item = TrialRecord(
            number=trial.number,
            params=dict(trial.params),
            metric=round(outcome.best, 6) if outcome.best is not None else None,
            state=outcome.state,
            seconds=outcome.seconds,
            note=outcome.note,
        )
        record.trials.append(item)
        events.emit("trial", **item.model_dump())
        leader = best_trial(record)
        if leader is not None:
            params = dict(leader.params)
            best_config = config.model_copy(update=_with_schedule(config, params, sizes[0]))
    record.stopped = stopped
    if stop["requested"]:
        return config
    best = best_trial(record)
    best_params = dict(best.params) if best is not None else dict(center)
    record.best_trial = best.number if best is not None else None
    values = dict(best_params)
    trimmed: float | None = None
    if speed.known:
        final = config.model_copy(update=_with_schedule(config, values, sizes[0]))
        estimate = estimate_final(final, sizes, speed)
        record.estimated_final_seconds = round(estimate.total, 1)
        record.finish_reserve_seconds = round(estimate.finish, 1)
        if "epochs" in values:
            trimmed = fitting_epochs(final, estimate, budget.left())
            if trimmed is not None:
                values["epochs"] = trimmed
    schedule = _with_schedule(config, values, sizes[0])
    record.search_seconds = round(budget.elapsed(), 1)
    if record.best_trial is None:
        record.stopped += "; no trial finished, so the recommendation is kept"
        record.chosen = {}
        if trimmed is not None:
            record.chosen["epochs"] = Recommendation(
                value=trimmed,
                reason=f"{trimmed:.3g} passes of the recommendation's {config.epochs:g} fit "
                "the time budget (no trial finished)",
            )
            if "checkpoint_steps" in schedule:
                record.chosen["checkpoint_steps"] = Recommendation(
                    value=schedule["checkpoint_steps"],
                    reason="about 10 evaluations (each with a checkpoint) over the trimmed "
                    "schedule",
                )
    else:
        record.chosen = _chosen(config, record, best_params, trimmed, schedule)
    chosen = apply_chosen(config, record)
    events.emit(
        "search",
        config=chosen.model_dump(mode="json"),
        trials=len(record.trials),
        best_trial=record.best_trial,
        chosen={k: v.model_dump() for k, v in record.chosen.items()},
        stopped=record.stopped,
    )
    return chosen
