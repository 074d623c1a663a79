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

__all__ = ["PROBE_STEPS", "STEP_OVERHEAD", "apply", "measure", "pace", "paced"]

logger = logging.getLogger("modelyard.training.pace")

#: Timed training steps of the measurement (after one untimed warm-up step).
PROBE_STEPS = 3
#: The measurement stops timing steps after this many seconds (a large model on a CPU).
PROBE_MAX_SECONDS = 20.0
#: A measured step (forward and backward) is taken this much longer: the optimizer's
#: update and the logging are not in it.
STEP_OVERHEAD = 1.1


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


def pace(
    trainer: Any,
    config: TrainingConfig,
    examples: list[dict[str, Any]],
    budget: Budget,
    events: EventWriter,
) -> TrainingConfig:
    """``config`` with its recommended passes held to ``budget`` (see the module's notes),
    applied to ``trainer``; reported as a ``recommended`` event."""
    sizes = split_sizes(config, examples)
    speed = measure(trainer)
    estimate = estimate_final(config, sizes, speed)
    left = budget.left()
    record = PaceRecord(
        target_s=budget.total,
        seconds_per_step=round(
            speed.per_example(config.batch_size)
            * config.batch_size
            * config.gradient_accumulation_steps,
            4,
        ),
        seconds_per_eval_example=round(speed.per_eval_example(), 5),
        save_seconds=round(speed.save or 0.0, 3),
        estimated_s=round(estimate.total, 1),
        finish_reserve_s=round(estimate.finish, 1),
    )
    epochs = fitting_epochs(config, estimate, left)
    if epochs is not None:
        record.epochs = epochs
        trimmed = config.model_copy(update={"epochs": epochs})
        if not config.is_set("checkpoint_steps"):
            record.checkpoint_steps = checkpoint_every(steps_of(trimmed, sizes[0]))
    before = config.epochs
    config = apply(config, record, trainer)
    if epochs is not None:
        recommended = dict(config.recommended or {})
        recommended["epochs"] = Recommendation(
            value=epochs,
            reason=(
                f"{_passes(epochs)} fit the {_minutes(budget.total)} time target of a CPU job "
                f"({_passes(before)}, the rules' choice, would take about "
                f"{_minutes(estimate.total + budget.elapsed())} at the measured "
                f"{record.seconds_per_step:.2g} s per step); set epochs to train more"
            )[:300],
        )
        if record.checkpoint_steps is not None:
            recommended["checkpoint_steps"] = Recommendation(
                value=record.checkpoint_steps,
                reason="about 10 evaluations (each with a checkpoint) over the paced schedule",
            )
        config = config.model_copy(update={"recommended": recommended})
    events.emit(
        "recommended",
        config=config.model_dump(mode="json"),
        recommended={k: v.model_dump() for k, v in (config.recommended or {}).items()},
        pace=record.model_dump(),
    )
    logger.info(
        "paced: %.2f s per step, the recommendation estimated at %.0f s of %.0f s left; epochs %s",
        record.seconds_per_step,
        estimate.total,
        left,
        epochs if epochs is not None else "kept",
    )
    return config


def apply(config: TrainingConfig, record: PaceRecord, trainer: Any) -> TrainingConfig:
    """``config`` and ``trainer``'s arguments with ``record``'s schedule (a resumed job's
    stored decision, or the one just made)."""
    values: dict[str, Any] = {"pace": record}
    if record.epochs is not None:
        values["epochs"] = record.epochs
        trainer.args.num_train_epochs = record.epochs
    if record.checkpoint_steps is not None:
        values["checkpoint_steps"] = record.checkpoint_steps
        trainer.args.save_steps = record.checkpoint_steps
        if trainer.args.eval_steps is not None:
            trainer.args.eval_steps = record.checkpoint_steps
    return config.model_copy(update=values)


def _passes(epochs: float) -> str:
    return f"{epochs:g} pass" if epochs == 1 else f"{epochs:g} passes"


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{math.ceil(seconds)} s"
    return f"{seconds / 60:.1f} min"
