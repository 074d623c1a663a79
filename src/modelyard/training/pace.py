"""Pacing: a CPU job's recommended schedule held to a time target.

The rules choose the passes for the data (about
:data:`~modelyard.training.advice.TARGET_STEPS` optimizer steps), not for the machine: on
two CPU cores three passes over a few thousand texts can take far longer than a user waits
for a first model. So before a CPU job trains, the worker measures its own speed on its
own model and data (:func:`measure`: a few forward and backward passes, an evaluation
batch and one save; nothing is learned from them), estimates the run
(:func:`~modelyard.training.timing.estimate_final`), and when the run would not end within
the target from the worker's start, trains fewer passes (:func:`pace`; the reason gives
the figures). The evaluations and checkpoints stay about ten over the shorter schedule.
A task that can read shorter inputs (classification, down to
:attr:`~modelyard.training.tasks.spec.TrainingTask.shortest_paced_length` tokens) first
trades length for passes: a recommended ``max_length`` is cut to where the passes would
fit (:func:`shorter_length`), the job is built and measured again there, and only then are
the passes trimmed; on a CPU a shorter input trained more often does better.
The last guard, :func:`~modelyard.training.timing.time_limit`, stops the training when
only the time to finish is left (the best checkpoint so far is restored and saved).

Only the passes the user left to the recommendation are paced: a job that sets
``epochs`` or ``max_steps`` trains them, and an ``auto`` job has its own budget. The target
is the setting ``MODELYARD_TRAINING_CPU_TIME_TARGET_SECONDS`` (0: no pacing); GPU jobs are
not paced. A resumed job keeps its first decision (:attr:`TrainingConfig.pace`).
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.training.advice import checkpoint_every
from modelyard.training.config import PaceRecord, Recommendation, TrainingConfig
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
    "PROBE_STEPS",
    "STEP_OVERHEAD",
    "Built",
    "apply",
    "measure",
    "pace",
    "paced",
    "shorter_length",
]

logger = logging.getLogger("modelyard.training.pace")

#: Timed training steps of the measurement (after one untimed warm-up step).
PROBE_STEPS = 3
#: The measurement stops timing steps after this many seconds (a large model on a CPU).
PROBE_MAX_SECONDS = 20.0
#: A measured step (forward and backward) is taken this much longer: the optimizer's
#: update and the logging are not in it.
STEP_OVERHEAD = 1.1
#: What the worker builds for a config: ``(prepared, trainer)``.
Built = tuple[Any, Any]


def paced(config: TrainingConfig, target_s: float | None) -> bool:
    """Whether ``config``'s schedule is held to ``target_s``: a CPU job whose passes the
    recommendation chose (not the user, not ``max_steps``, not an ``auto`` search)."""
    return bool(
        target_s
        and config.compute_type == "cpu"
        and config.auto is None
        and not config.max_steps
        and not config.is_set("epochs")
        and "epochs" in (config.recommended or {})
    )


def measure(trainer: Any) -> Throughput:
    """The job's speed on its own model and data: seconds per training example (a few
    forward and backward passes, their gradients dropped), per evaluated example and to
    save the model once. The model's weights are not changed."""
    import torch

    model = trainer.model
    batch_size = trainer.args.per_device_train_batch_size
    speed = Throughput(setup=[0.0])  # the model is loaded already
    steps: list[float] = []
    model.train()
    began = last = time.monotonic()
    for index, inputs in enumerate(trainer.get_train_dataloader()):
        loss = trainer.compute_loss(model, inputs)
        loss.backward()
        now = time.monotonic()
        if index:  # the first step allocates what the others reuse
            steps.append(now - last)
        last = now
        if len(steps) >= PROBE_STEPS or now - began > PROBE_MAX_SECONDS:
            break
    model.zero_grad(set_to_none=True)
    if not steps:  # a single batch: its one step is all there is
        steps.append(last - began)
    per_step = statistics.median(steps) * STEP_OVERHEAD
    speed.train[batch_size] = [per_step / batch_size]
    if trainer.eval_dataset is not None and len(trainer.eval_dataset):
        model.eval()
        only_loss = trainer.compute_metrics is None
        counted, seconds = 0, 0.0
        with torch.no_grad():
            for index, inputs in enumerate(trainer.get_eval_dataloader()):
                started = time.monotonic()
                trainer.prediction_step(model, inputs, prediction_loss_only=only_loss)
                seconds += time.monotonic() - started
                counted += _rows(inputs)
                if index >= 1:
                    break
        model.train()
        speed.evaluation.append(seconds / max(counted, 1))
    folder = Path(tempfile.mkdtemp(prefix="modelyard-pace-"))
    try:
        started = time.monotonic()
        trainer.save_model(str(folder))
        speed.save = time.monotonic() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return speed


def _rows(inputs: dict[str, Any]) -> int:
    for value in inputs.values():
        shape = getattr(value, "shape", None)
        if shape:
            return int(shape[0])
    return 1


def shorter_length(config: TrainingConfig, epochs: float, shortest: int) -> int:
    """The ``max_length`` at which ``config``'s passes would fit where only ``epochs`` fit
    at its own (the time per step taken as growing with the length), a multiple of 8, not
    below ``shortest``."""
    fitting = int(config.max_length * epochs / config.epochs) // 8 * 8
    return min(config.max_length, max(shortest, fitting))


def pace(
    built: Built,
    config: TrainingConfig,
    examples: list[dict[str, Any]],
    budget: Budget,
    events: EventWriter,
    rebuild: Callable[[TrainingConfig], Built] | None = None,
    shortest: int | None = None,
) -> tuple[TrainingConfig, Built]:
    """``config`` with its recommended passes held to ``budget`` (see the module's notes),
    and what trains it: ``built`` with its arguments changed, or, when the task trades
    input length for passes (``shortest``) and the passes would not fit, ``rebuild`` at a
    shorter ``max_length``. Reported as a ``recommended`` event."""
    sizes = split_sizes(config, examples)
    rules_epochs, rules_length = config.epochs, config.max_length
    speed = measure(built[1])
    estimate = estimate_final(config, sizes, speed)
    epochs = fitting_epochs(config, estimate, budget.left())
    rules = (rules_length, estimate.total + budget.elapsed())
    shortened: int | None = None
    if epochs is not None and rebuild is not None and shortest is not None:
        length = shorter_length(config, epochs, shortest)
        if length < config.max_length:
            shortened = length
            config = config.model_copy(update={"max_length": length})
            built = rebuild(config)
            speed = measure(built[1])
            estimate = estimate_final(config, sizes, speed)
            epochs = fitting_epochs(config, estimate, budget.left())
    record = PaceRecord(
        target_s=budget.total,
        seconds_per_step=round(
            speed.per_example(config.batch_size)
            * config.batch_size
            * config.gradient_accumulation_steps,
            4,
        ),
        seconds_per_eval_example=round(speed.per_eval_example(), 6),
        save_seconds=round(speed.save or 0.0, 6),
        estimated_s=round(estimate.total + budget.elapsed(), 1),
        finish_reserve_s=round(estimate.finish, 1),
        epochs=epochs,
        max_length=shortened,
    )
    if epochs is not None and not config.is_set("checkpoint_steps"):
        trimmed = config.model_copy(update={"epochs": epochs})
        record.checkpoint_steps = checkpoint_every(steps_of(trimmed, sizes[0]))
    config = apply(config, record)
    _set_schedule(built[1], config)
    config = config.model_copy(
        update={
            "recommended": {
                **(config.recommended or {}),
                **_reasons(record, budget.total, rules_epochs, rules),
            }
        }
    )
    events.emit(
        "recommended",
        config=config.model_dump(mode="json"),
        recommended={k: v.model_dump() for k, v in (config.recommended or {}).items()},
        pace=record.model_dump(),
    )
    logger.info(
        "paced: %.2f s per step, %.0f s estimated of %.0f s left; epochs %s, max_length %s",
        record.seconds_per_step,
        estimate.total,
        budget.left(),
        epochs if epochs is not None else "kept",
        shortened if shortened is not None else "kept",
    )
    return config, built


def _reasons(
    record: PaceRecord, target_s: float, rules_epochs: float, rules: tuple[int, float]
) -> dict[str, Recommendation]:
    """Why the pacing changed what it changed; ``rules`` is the rules' length and the
    seconds their schedule would have taken at it."""
    target = f"the {_minutes(target_s)} time target of a CPU job"
    rules_length, rules_seconds = rules
    reasons: dict[str, Recommendation] = {}
    if record.max_length is not None:
        reasons["max_length"] = Recommendation(
            value=record.max_length,
            reason=(
                f"cut from {rules_length} tokens ({_passes(rules_epochs)} at that length would "
                f"take about {_minutes(rules_seconds)}) so that more passes fit {target}: on a "
                "CPU a shorter input trained more often does better; set max_length to keep it"
            )[:300],
        )
    if record.epochs is not None:
        reasons["epochs"] = Recommendation(
            value=record.epochs,
            reason=(
                f"{_passes(record.epochs)} fit {target} ({_passes(rules_epochs)}, the rules' "
                f"choice, would take about {_minutes(record.estimated_s)} at the measured "
                f"{record.seconds_per_step:.2g} s per step); set epochs to train more"
            )[:300],
        )
    if record.checkpoint_steps is not None:
        reasons["checkpoint_steps"] = Recommendation(
            value=record.checkpoint_steps,
            reason="about 10 evaluations (each with a checkpoint) over the paced schedule",
        )
    return reasons


def apply(config: TrainingConfig, record: PaceRecord) -> TrainingConfig:
    """``config`` with ``record``'s schedule and length (the decision just made, or a
    resumed job's stored one, applied before anything is built)."""
    values: dict[str, Any] = {"pace": record}
    for name in ("epochs", "checkpoint_steps", "max_length"):
        if getattr(record, name) is not None:
            values[name] = getattr(record, name)
    return config.model_copy(update=values)


def _set_schedule(trainer: Any, config: TrainingConfig) -> None:
    """``trainer``'s arguments with ``config``'s passes and evaluation interval (read when
    its training starts)."""
    trainer.args.num_train_epochs = config.epochs
    trainer.args.save_steps = config.checkpoint_steps
    if trainer.args.eval_steps is not None:
        trainer.args.eval_steps = config.checkpoint_steps


def _passes(epochs: float) -> str:
    return f"{epochs:g} pass" if epochs == 1 else f"{epochs:g} passes"


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{math.ceil(seconds)} s"
    return f"{seconds / 60:.1f} min"
