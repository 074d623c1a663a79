"""The training worker: one job, in its own process (``python -m modelyard.training.worker``).

It talks to the runner through files in the job's working directory, so it needs no
database access and a crash here never reaches the server:

* ``spec.json`` (read): the config, the dataset file, the output directory, the device
  and the checkpoint to resume from;
* standard input (read once): the job's secrets as JSON, never written anywhere;
* ``events.jsonl`` (appended): ``state``, ``recommended`` (the config as chosen for the
  data, :func:`~modelyard.training.advice.recommend`), ``progress``, ``eval``,
  ``checkpoint`` lines;
* ``result.json`` (written last): ``succeeded`` with metrics, ``failed`` with the error,
  or ``cancelled``.

SIGTERM stops training at the end of the current step. The worker dies with its parent
(Linux), so a server restart leaves no orphan; the runner resumes the job instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["EVENTS_FILE", "RESULT_FILE", "SPEC_FILE", "EventWriter", "main", "run"]

SPEC_FILE = "spec.json"
EVENTS_FILE = "events.jsonl"
RESULT_FILE = "result.json"
CHECKPOINTS = "checkpoints"
#: Seconds between two progress lines (a loss report is always written).
PROGRESS_INTERVAL = 0.5

logger = logging.getLogger("modelyard.training.worker")


class EventWriter:
    """Appends JSON lines to ``events.jsonl``, flushed at once."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")

    def emit(self, kind: str, **data: Any) -> None:
        self._file.write(json.dumps({"kind": kind, "time": time.time(), **data}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _die_with_parent() -> None:
    if sys.platform != "linux":
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _process_age() -> float:
    """Seconds since this process started (Linux; else 0): the interpreter's start-up
    counts against an ``auto`` job's time budget too."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _write_result(work_dir: Path, result: dict[str, Any]) -> None:
    staging = work_dir / f"{RESULT_FILE}.tmp"
    staging.write_text(json.dumps(result, default=str))
    staging.replace(work_dir / RESULT_FILE)


def _progress_callback(events: EventWriter, stop: dict[str, bool], batch: int) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Reports progress, checkpoints and evaluations; stops training when asked."""

        def __init__(self) -> None:
            self.started = time.monotonic()
            self.first_step = 0
            self.last_emit = 0.0
            self.loss: float | None = None
            self.learning_rate: float | None = None
            self.reported_last = False

        def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            self.started = time.monotonic()
            self.first_step = state.global_step
            events.emit("state", state="running", step=state.global_step, total=state.max_steps)

        def _report(self, state: Any, *, force: bool) -> None:
            now = time.monotonic()
            if not force and now - self.last_emit < PROGRESS_INTERVAL:
                return
            self.last_emit = now
            done = state.global_step - self.first_step
            elapsed = max(now - self.started, 1e-9)
            rate = done / elapsed
            events.emit(
                "progress",
                step=state.global_step,
                total_steps=state.max_steps,
                epoch=round(float(state.epoch or 0.0), 4),
                loss=self.loss,
                learning_rate=self.learning_rate,
                samples_per_second=round(rate * batch, 3),
                eta_seconds=round((state.max_steps - state.global_step) / rate, 1)
                if rate > 0
                else None,
                elapsed_seconds=round(elapsed, 3),
            )

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            logged = state.global_step % args.logging_steps == 0
            if not logged and state.global_step < state.max_steps:
                self._report(state, force=False)  # a logged step is reported by on_log
            if stop["requested"]:
                control.should_training_stop = True
                control.should_save = False

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            logs = logs or {}
            if "loss" in logs:
                self.loss = float(logs["loss"])
                self.learning_rate = float(logs.get("learning_rate") or 0.0)
                self._report(state, force=True)
                self.reported_last = state.global_step >= state.max_steps
            elif state.global_step >= state.max_steps and not self.reported_last:
                self._report(state, force=True)
                self.reported_last = True

        def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            events.emit("checkpoint", step=state.global_step, path=str(path))

    return Progress()


def _evaluation(config: Any, best: tuple[str, bool] | None) -> dict[str, Any]:
    """Evaluation on the validation split every ``checkpoint_steps`` and the best
    checkpoint restored at the end (by ``best``: the metric and whether higher is better),
    when early stopping is on; else no evaluation during training."""
    if best is None or not config.early_stopping_patience:
        return {"eval_strategy": "no"}
    metric, greater = best
    return {
        "eval_strategy": "steps",
        "eval_steps": config.checkpoint_steps,
        "load_best_model_at_end": True,
        "metric_for_best_model": metric,
        "greater_is_better": greater,
    }


def _training_arguments(
    config: Any,
    work_dir: Path,
    device: str,
    arguments_class: Any,
    extra: dict[str, Any],
    best: tuple[str, bool] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Any:
    """The trainer's arguments: the config's, the GPU options', then the task's own;
    ``best`` (the validation metric and its direction) turns on early stopping;
    ``overrides`` replace any of them (a search trial's evaluation and output)."""
    from transformers import TrainingArguments

    from modelyard.training.gpu import precision_flags

    # transformers 5's name for gradient checkpointing; set either way, as TRL's configs
    # default it to on.
    checkpointing: dict[str, Any] = {"activation_checkpointing": config.gradient_checkpointing}
    if config.gradient_checkpointing:
        # Non-reentrant: works with frozen (LoRA, 4-bit) base weights.
        checkpointing["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    options: dict[str, Any] = {
        **precision_flags(config, device),
        **checkpointing,
        **_evaluation(config, best),
        **extra,
    }
    values: dict[str, Any] = dict(
        output_dir=str(work_dir / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=max(config.batch_size, 8),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.checkpoint_steps,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        seed=config.seed,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
    )
    return (arguments_class or TrainingArguments)(**(values | options | (overrides or {})))


def _trainer(prepared: Any, arguments: Any, callbacks: list[Any]) -> Any:
    """The task's own trainer (TRL's), else a ``transformers.Trainer`` of its fields."""
    if prepared.make_trainer is not None:
        return prepared.make_trainer(arguments, callbacks)
    from transformers import Trainer

    return Trainer(
        model=prepared.model,
        args=arguments,
        train_dataset=prepared.train_dataset,
        eval_dataset=prepared.eval_dataset,
        data_collator=prepared.data_collator,
        compute_metrics=prepared.compute_metrics,
        callbacks=callbacks,
    )


def _recommended(
    config: Any,
    spec: dict[str, Any],
    examples: list[dict[str, Any]],
    base_dir: Path,
    base_name: str,
    events: EventWriter,
) -> Any:
    """The config with what the user did not set chosen for the data and the base model
    (an applied language model's advice in the spec is followed, within the same bounds);
    reported as a ``recommended`` event."""
    from modelyard.training.advice import AdviceResult, measure, recommend

    if not config.recommend:
        return config
    applied = spec.get("advice")
    advice = AdviceResult.model_validate(applied) if applied else None
    chosen = recommend(config, measure(config, examples, base_dir, base_name), advice)
    events.emit(
        "recommended",
        config=chosen.model_dump(mode="json"),
        recommended={k: v.model_dump() for k, v in (chosen.recommended or {}).items()},
    )
    return chosen


def _held_to_time(
    config: Any,
    spec: dict[str, Any],
    examples: list[dict[str, Any]],
    build: Any,
    budget: Any,
    started: float,
    events: EventWriter,
) -> tuple[Any, tuple[Any, Any]]:
    """The config held to its time and what trains it (``build(config)``: the prepared
    task and its trainer): an ``auto`` job's ``budget``, or a CPU job's time target for its
    recommended passes (:mod:`~modelyard.training.pace`); the trainer then stops when only
    the time to finish is left."""
    from modelyard.training import pace
    from modelyard.training.tasks import get_task
    from modelyard.training.timing import Budget, time_limit

    built = build(config)
    target = float(spec.get("cpu_time_target_s") or 0.0)
    if budget is None and pace.paced(config, target):
        budget = Budget(started, target)
        if config.pace is None:
            shortest = get_task(config.task).shortest_paced_length
            rebuild = None if config.is_set("max_length") else build
            config, built = pace.pace(built, config, examples, budget, events, rebuild, shortest)
    if budget is None:
        return config, built
    if config.pace is not None:
        reserve = config.pace.finish_reserve_s
    else:
        reserve = config.search.finish_reserve_seconds if config.search else 0.0
    built[1].add_callback(time_limit(budget, reserve, events))
    return config, built


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


def run(work_dir: Path, secrets: dict[str, str]) -> dict[str, Any]:
    """Train the job described in ``work_dir`` and return its result."""
    from modelyard.local.sources import LocalRef, locate
    from modelyard.training import pace
    from modelyard.training.config import WORKER_FIELDS, TrainingConfig
    from modelyard.training.datasets import load_examples
    from modelyard.training.outputs import ModelCard, save_model
    from modelyard.training.tasks import get_task

    started = time.monotonic() - _process_age()  # an ``auto`` job's budget runs from here
    spec = json.loads((work_dir / SPEC_FILE).read_text())
    config = TrainingConfig.model_validate(spec["config"])
    events = EventWriter(work_dir / EVENTS_FILE)
    stop = {"requested": False}

    def on_term(_signum: int, _frame: Any) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        events.emit("state", state="validating")
        import torch

        device = "cuda" if config.compute_type == "gpu" else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("compute_type gpu: no CUDA GPU is visible to the worker")
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        kind, examples = load_examples(Path(spec["dataset"]["path"]), spec["dataset"]["format"])
        base = LocalRef(**spec["base"])
        base_name = base.name
        source = asyncio.run(locate(base, token=secrets.get("hf_token")))
        task = get_task(config.task)
        if task.check_base is not None:
            task.check_base(base_name, source.task)
        config = _recommended(config, spec, examples, source.path, base_name, events)
        budget = None
        if config.auto is not None:
            from modelyard.training import search
            from modelyard.training.timing import Budget

            budget = Budget(started, config.auto.time_budget_s)
            if config.search is None:
                config = search.run_search(
                    config, examples, source.path, device, work_dir, events, stop, budget
                )
                if stop["requested"]:
                    return {"state": "cancelled"}
            else:  # resumed: the search ran already; its values stand
                config = search.apply_chosen(config, config.search)
        if config.pace is not None:  # resumed: the first decision stands
            config = pace.apply(config, config.pace)

        def build(config: Any) -> tuple[Any, Any]:
            prepared = task.prepare(config, examples, source.path)
            batch = config.batch_size * config.gradient_accumulation_steps
            best = (task.best_metric, task.greater_is_better) if prepared.eval_dataset else None
            arguments = _training_arguments(
                config, work_dir, device, prepared.arguments_class, prepared.arguments_extra, best
            )
            callbacks = [_progress_callback(events, stop, batch)]
            if arguments.load_best_model_at_end:
                from transformers import EarlyStoppingCallback

                callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
            return prepared, _trainer(prepared, arguments, callbacks)

        config, (prepared, trainer) = _held_to_time(
            config, spec, examples, build, budget, started, events
        )
        resume = spec.get("resume_from")
        if resume and not Path(resume).is_dir():
            resume = None
        train_output = trainer.train(resume_from_checkpoint=resume)
        if stop["requested"]:
            return {"state": "cancelled"}
        metrics = prepared.derive_metrics(dict(trainer.evaluate()))
        metrics["train_loss"] = float(train_output.training_loss)
        metrics["train_samples_per_second"] = float(
            train_output.metrics.get("train_samples_per_second", 0.0)
        )
        if trainer.state.best_global_step:
            metrics["best_step"] = int(trainer.state.best_global_step)
        metrics["trained_steps"] = int(trainer.state.global_step)
        report = prepared.report(trainer) if prepared.report is not None else {}
        details = report.pop("test_report", None)
        metrics.update(report)
        events.emit("eval", step=trainer.state.global_step, metrics=metrics)
        model = prepared.finish(trainer.model)
        card = ModelCard(
            name=spec["output_name"],
            task=config.task,
            base_model=base_name,
            dataset={
                "name": spec["dataset"]["name"],
                "sha256": spec["dataset"]["sha256"],
                "kind": kind,
                "examples": len(examples),
                "train_examples": len(prepared.train_dataset),
                "eval_examples": len(prepared.eval_dataset),
            },
            hyperparameters=config.model_dump(exclude={"output_name", "lora", *WORKER_FIELDS})
            | ({"lora": config.lora.model_dump()} if config.method == "lora" else {}),
            metrics={k: round(float(v), 6) for k, v in metrics.items()},
            job_id=int(spec["job_id"]),
            extra=prepared.card
            | (
                {"chosen for the data": ", ".join(sorted(config.recommended))}
                if config.recommended
                else {}
            ),
        )
        save_model(model, prepared.tokenizer, Path(spec["output_dir"]), card)
        final = dict(card.metrics)
        if details is not None:
            final["test_report"] = _rounded(details)
        result: dict[str, Any] = {"state": "succeeded", "metrics": final}
        if spec.get("hub"):
            result["hub_push"] = _push(spec, secrets.get("hf_token"), events)
        return result
    except Exception as exc:  # reported to the runner, never raised to it
        logger.error("training failed:\n%s", traceback.format_exc())
        return {"state": "failed", "error": f"{type(exc).__name__}: {exc}"[:4000]}
    finally:
        events.close()


def _push(spec: dict[str, Any], token: str | None, events: EventWriter) -> dict[str, Any]:
    """Push the saved model to the Hub; the outcome (a failure keeps the local model)."""
    from modelyard.training.hub import push_outcome

    hub = spec["hub"]
    outcome: dict[str, Any] = {"repo_id": hub.get("repo_id"), "private": hub["private"]}
    if not token:
        outcome |= {
            "state": "failed",
            "error": "the Hugging Face token was held in memory only and is gone (the job "
            "was resumed after a restart); push the model with POST "
            f"/v2/training/jobs/{spec['job_id']}/push or `modelyard jobs push`",
        }
    else:
        events.emit("hub", state="pushing", **outcome)
        outcome = push_outcome(
            Path(spec["output_dir"]),
            token=token,
            output_name=spec["output_name"],
            repo_id=hub.get("repo_id"),
            private=hub["private"],
            endpoint=hub.get("endpoint"),
        )
    events.emit("hub", **outcome)
    return outcome


def _read_secrets() -> dict[str, str]:
    if sys.stdin is None or sys.stdin.isatty():
        return {}
    raw = sys.stdin.readline()
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one modelyard training job.")
    parser.add_argument("work_dir", type=Path)
    args = parser.parse_args(argv)
    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    secrets = _read_secrets()
    result = run(args.work_dir, secrets)
    _write_result(args.work_dir, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
