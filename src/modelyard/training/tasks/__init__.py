"""Training tasks: one module per task declares its :class:`TrainingTask`; this registry
lists them. The worker, the job checks, the dataset checks, the API, the CLI and the web
page all take the tasks from :data:`TASKS` (``docs/architecture.md``: add a training task).
"""

from __future__ import annotations

from modelyard.errors import BadRequestError
from modelyard.training.tasks import classification, dpo, orpo, sft
from modelyard.training.tasks.prepared import Prepared, split_examples
from modelyard.training.tasks.spec import TaskAdvice, TrainingTask

__all__ = [
    "TASKS",
    "TASK_ALIASES",
    "TASK_NAMES",
    "Prepared",
    "TaskAdvice",
    "TrainingTask",
    "UnknownTaskError",
    "canonical_task",
    "get_task",
    "split_examples",
    "tasks_offering",
]

#: Every training task by name, in the order they are offered.
TASKS: dict[str, TrainingTask] = {
    task.name: task for task in (classification.TASK, sft.TASK, dpo.TASK, orpo.TASK)
}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)
#: Other names of the tasks (``text-classification``) → their names.
TASK_ALIASES: dict[str, str] = {alias: t.name for t in TASKS.values() for alias in t.aliases}


class UnknownTaskError(BadRequestError):
    """A task name the registry does not hold (400, naming the valid ones)."""


def canonical_task(name: str) -> str:
    """The task's own name for ``name`` (an alias such as ``text-generation``), else
    ``name`` unchanged."""
    return TASK_ALIASES.get(name, name)


def get_task(name: str) -> TrainingTask:
    """The task called ``name`` (or one of its aliases), or :class:`UnknownTaskError`."""
    task = TASKS.get(canonical_task(name))
    if task is None:
        raise UnknownTaskError(f"Unknown task {name!r}; use {' or '.join(TASKS)}.", param="task")
    return task


def tasks_offering(method: str) -> list[str]:
    """The names of the tasks that train with ``method`` (``full``, ``lora``)."""
    return [task.name for task in TASKS.values() if method in task.methods]
