"""A job's time: its budget, the throughput measured on its model and data, and the
estimate of a run's seconds from them (used by the ``auto`` search and by the pacing of
a recommended schedule, :mod:`modelyard.training.pace`)."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.training.config import TrainingConfig
from modelyard.training.tasks import get_task
from modelyard.training.tasks.prepared import split_examples, three_way_split

if TYPE_CHECKING:
    from modelyard.training.worker import EventWriter

__all__ = [
    "FINISH_MARGIN",
    "FINISH_SAFETY",
    "Budget",
    "FinalEstimate",
    "Throughput",
    "estimate_final",
    "fitting_epochs",
    "split_sizes",
    "steps_of",
    "time_limit",
]

#: The time to finish after training (evaluate, report, save) is estimated this much
#: larger than measured: a loaded machine's timings vary.
FINISH_SAFETY = 1.3
#: Seconds added to every estimate of the time left after training (loading the best
#: checkpoint, the TF-IDF baseline, writing the card).
FINISH_MARGIN = 2.0


@dataclass
class Budget:
    """A job's time budget: ``started`` (``time.monotonic()``) and ``total`` seconds."""

    started: float
    total: float

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.total - self.elapsed()


@dataclass
class Throughput:
    """What the trials measured; the final run's time is estimated from it."""

    #: Seconds to load the base model and encode the data (one per trial).
    setup: list[float] = field(default_factory=list)
    #: Seconds per training example, by batch size.
    train: dict[int, list[float]] = field(default_factory=dict)
    #: Seconds per evaluated example.
    evaluation: list[float] = field(default_factory=list)
    #: Seconds to save the model once.
    save: float | None = None

    @property
    def known(self) -> bool:
        return bool(self.setup and self.train)

    def per_example(self, batch: int) -> float:
        """Seconds per training example at ``batch`` (measured, else the nearest batch's)."""
        if batch in self.train:
            return statistics.fmean(self.train[batch])
        nearest = min(self.train, key=lambda size: abs(math.log(size / batch)))
        return statistics.fmean(self.train[nearest])

    def per_eval_example(self) -> float:
        return statistics.fmean(self.evaluation) if self.evaluation else 0.0

    def load(self) -> float:
        return statistics.median(self.setup)


def split_sizes(config: TrainingConfig, examples: list[dict[str, Any]]) -> tuple[int, int, int]:
    """The training, validation and test splits' sizes, as the task will split."""
    task = get_task(config.task)
    if task.held_out_test:
        train, held_out, test = three_way_split(
            examples, config.eval_fraction, config.test_fraction, config.seed
        )
        return len(train), len(held_out), len(test)
    train, held_out = split_examples(examples, config.eval_fraction, config.seed)
    return len(train), len(held_out), 0


def steps_of(config: TrainingConfig, examples: int) -> int:
    """Optimizer steps of a run over ``examples`` (as the trainer counts them)."""
    if config.max_steps:
        return config.max_steps
    batches = math.ceil(examples / config.batch_size)
    per_epoch = max(1, batches // config.gradient_accumulation_steps)
    return max(1, math.ceil(per_epoch * config.epochs))


@dataclass(frozen=True)
class FinalEstimate:
    """The final run's seconds, estimated from the trials' measurements."""

    #: Loading the model and encoding the data.
    load: float
    #: The optimizer steps.
    steps: float
    #: The evaluations and checkpoints during training (about ten, whatever the length).
    checks: float
    #: After training: the last evaluation, the test report and saving.
    finish: float

    @property
    def training(self) -> float:
        return self.load + self.steps + self.checks

    @property
    def total(self) -> float:
        return self.training + self.finish


def estimate_final(
    config: TrainingConfig, sizes: tuple[int, int, int], speed: Throughput
) -> FinalEstimate:
    """The final run's time (:class:`FinalEstimate`) from the trials' measurements."""
    train, held_out, test = sizes
    steps = steps_of(config, train)
    batch = config.batch_size * config.gradient_accumulation_steps
    save = speed.save if speed.save is not None else speed.load()
    evaluating = config.early_stopping_patience > 0 and held_out > 0
    evaluations = steps // config.checkpoint_steps if evaluating else 0
    per_eval = held_out * speed.per_eval_example()
    # A checkpoint holds the model, the optimizer's two moments and the scheduler.
    checkpoints = (steps // config.checkpoint_steps) * 3 * save
    finish = per_eval + test * speed.per_eval_example() + save
    if evaluating:
        finish += save  # loading the best checkpoint back
    return FinalEstimate(
        load=speed.load(),
        steps=steps * batch * speed.per_example(config.batch_size),
        checks=evaluations * per_eval + checkpoints,
        finish=finish * FINISH_SAFETY + FINISH_MARGIN,
    )


def time_limit(budget: Budget, reserve: float, events: EventWriter) -> Any:
    """A callback stopping the final run's training when only ``reserve`` seconds of the
    budget are left (the best checkpoint so far is restored and saved)."""
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if budget.left() <= reserve and not control.should_training_stop:
                control.should_training_stop = True
                events.emit(
                    "log",
                    message=f"time budget: training stopped at step {state.global_step} of "
                    f"{state.max_steps} to finish within {budget.total:g} s",
                )

    return TimeLimit()


def fitting_epochs(config: TrainingConfig, estimate: FinalEstimate, seconds: float) -> float | None:
    """The passes of ``config``'s schedule that fit in ``seconds`` by its ``estimate``
    (at least a tenth of one), or ``None`` when the whole schedule fits. The evaluations
    and checkpoints stay about ten whatever the length; the steps are what shrink."""
    if estimate.total <= seconds:
        return None
    room = seconds - estimate.finish - estimate.load - estimate.checks
    share = max(room, 0.0) / max(estimate.steps, 1e-6)
    trimmed = round(max(0.1, config.epochs * share), 2)
    return trimmed if trimmed < config.epochs else None
