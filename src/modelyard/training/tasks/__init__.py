"""Training tasks: one module per task declares its :class:`TrainingTask`; this registry
lists them. The worker, the job checks, the dataset checks, the API, the CLI and the web
page all take the tasks from :data:`TASKS` (``docs/architecture.md``: add a training task).
"""

from __future__ import annotations

from modelyard.errors import BadRequestError
from modelyard.training.tasks import classification, sft
from modelyard.training.tasks.prepared import Prepared, split_examples
from modelyard.training.tasks.spec import TaskAdvice, TrainingTask

__all__ = [
    "TASKS",
    "TASK_NAMES",
    "Prepared",
    "TaskAdvice",
    "TrainingTask",
    "UnknownTaskError",
    "get_task",
    "split_examples",
    "tasks_offering",
]

#: Every training task by name, in the order they are offered.
TASKS: dict[str, TrainingTask] = {task.name: task for task in (classification.TASK, sft.TASK)}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)


class UnknownTaskError(BadRequestError):
    """A task name the registry does not hold (400, naming the valid ones)."""


def get_task(name: str) -> TrainingTask:
    """The task called ``name``, or :class:`UnknownTaskError`."""
    task = TASKS.get(name)
    if task is None:
        raise UnknownTaskError(f"Unknown task {name!r}; use {' or '.join(TASKS)}.", param="task")
    return task


def tasks_offering(method: str) -> list[str]:
    """The names of the tasks that train with ``method`` (``full``, ``lora``)."""
    return [task.name for task in TASKS.values() if method in task.methods]
