"""``modelyard train`` and ``modelyard jobs``: fine-tune from the command line.

``train`` stores and checks the dataset, queues the job and runs it in the foreground
(a worker process, as the server would) with a progress bar: loss, samples/s, ETA.
Ctrl-C cancels the job. With ``--detach`` the job is only queued, for a running server.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from modelyard.cli.common import console, err_console, require_migrated, settings_from_env
from modelyard.config import Settings
from modelyard.db.engine import Database, create_database
from modelyard.db.models import TrainingJob
from modelyard.errors import ModelyardError
from modelyard.training import jobs
from modelyard.training.advice import AdviceRequestFacts, AdviceResult, measure, recommend
from modelyard.training.advisor import advise, facts_for
from modelyard.training.bounds import UploadLimits
from modelyard.training.config import (
    PaceRecord,
    Recommendation,
    SearchRecord,
    TaskName,
    TrainingConfig,
    parse_duration,
)
from modelyard.training.datasets import load_examples
from modelyard.training.hub import push_trained_model
from modelyard.training.keys import JobKeys, given_secrets
from modelyard.training.runner import TrainingRunner
from modelyard.training.uploads import stage_path, store_dataset

__all__ = ["app", "train"]

app = typer.Typer(help="Training jobs.", no_args_is_help=True)


def _run(settings: Settings, work: Any) -> Any:
    require_migrated(settings)

    async def runner() -> Any:
        database = create_database(settings)
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(runner())
    except ModelyardError as exc:
        err_console.print(f"[red]Error:[/red] {exc.message}", highlight=False)
        issues = getattr(exc, "issues", None) or []
        for issue in issues[1:] if len(issues) > 1 else []:
            err_console.print(f"  {issue}", highlight=False)
        raise typer.Exit(1) from None


def _number(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


async def _follow(database: Database, job_id: int, *, shown: bool = False) -> TrainingJob:
    """Follow the job to its end with a progress bar; the values chosen for the data are
    printed when the worker reports them (unless ``shown`` already), an ``auto`` job's
    trials as each ends and the search's table when it is done."""
    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]} samples/s"),
        TextColumn("ETA {task.fields[eta]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("queued", total=None, loss="-", rate="-", eta="-")
        cursor, searched, timed = 0, False, False
        while True:
            async with database.sessions() as session:
                job = await jobs.get_job(session, job_id, None)
                trials = await jobs.events_after(session, job_id, cursor, kinds=("trial",))
            for event in trials:
                cursor = event.id
                _show_trial(event.data)
            chosen = (job.config or {}).get("recommended")
            if chosen is not None and not shown:
                shown = True
                _show_recommended(chosen)
            paced = (job.config or {}).get("pace")
            if paced is not None and not timed:
                timed = True
                _show_pace(PaceRecord.model_validate(paced))
            search = (job.config or {}).get("search")
            if search is not None and not searched:
                searched = True
                _show_search(SearchRecord.model_validate(search))
            done = job.progress or {}
            eta = done.get("eta_seconds")
            progress.update(
                bar,
                description=job.state,
                total=done.get("total_steps"),
                completed=done.get("step", 0),
                loss=_number(done.get("loss")),
                rate=_number(done.get("samples_per_second"), 3),
                eta="-" if eta is None else f"{int(eta) // 60}:{int(eta) % 60:02d}",
            )
            if job.state in jobs.TERMINAL_STATES:
                return job
            await asyncio.sleep(0.3)


@app.command("list")
def list_jobs(state: str | None = typer.Option(None, help="Only jobs in this state.")) -> None:
    """Every job, newest first."""

    async def work(database: Database) -> list[TrainingJob]:
        async with database.sessions() as session:
            return await jobs.list_jobs(session, None, state=state)

    table = Table("id", "state", "task", "base", "model", "step", "created")
    for job in _run(settings_from_env(), work):
        step = job.progress.get("step")
        total = job.progress.get("total_steps")
        table.add_row(
            str(job.id),
            job.state,
            job.task,
            job.base_model,
            job.output_name,
            f"{step}/{total}" if step is not None else "-",
            f"{job.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@app.command("show")
def show(job_id: int) -> None:
    """A job's config, progress, metrics and error."""

    async def work(database: Database) -> TrainingJob:
        async with database.sessions() as session:
            return await jobs.get_job(session, job_id, None)

    job = _run(settings_from_env(), work)
    console.print(f"Job {job.id}: [bold]{job.state}[/bold] ({job.task}, {job.compute_type})")
    console.print(f"Base model: {job.base_model}  →  model: {job.output_name}", highlight=False)
    console.print(f"Progress: {job.progress}", highlight=False)
    if job.metrics:
        console.print(f"Metrics: {job.metrics}", highlight=False)
    if job.error:
        console.print(f"[red]Error:[/red] {job.error}", highlight=False)
    search = (job.config or {}).get("search")
    if search is not None:
        _show_search(SearchRecord.model_validate(search))
    console.print(
        f"Config: { {k: v for k, v in (job.config or {}).items() if k != 'search'} }",
        highlight=False,
    )


@app.command("cancel")
def cancel(job_id: int) -> None:
    """Cancel a job (its runner stops the worker within seconds)."""

    async def work(database: Database) -> TrainingJob:
        async with database.sessions() as session:
            return await jobs.request_cancel(session, await jobs.get_job(session, job_id, None))

    job = _run(settings_from_env(), work)
    verb = "cancelled" if job.state == "cancelled" else "asked to stop"
    console.print(f"Job {job.id} {verb}.")


@app.command("push")
def push(
    job_id: int,
    push_to: str | None = typer.Option(None, "--push-to", help="owner/name (default: yours)."),
    public: bool = typer.Option(False, "--public", help="Create the repository public."),
    hf_token: str | None = typer.Option(None, envvar="HF_TOKEN", hidden=True),
) -> None:
    """Push a succeeded job's model to the Hub (token from HF_TOKEN or a hidden prompt)."""
    if not hf_token:
        hf_token = typer.prompt("Hugging Face token", hide_input=True)
    settings = settings_from_env()

    async def work(database: Database) -> dict[str, Any]:
        token = given_secrets(JobKeys(hf_token=SecretStr(hf_token or ""))).hf_token
        assert token is not None
        async with database.sessions() as session:
            job = await jobs.get_job(session, job_id, None)
            job.hub_push = await push_trained_model(
                session, job, settings.data_dir.resolve(), token, repo_id=push_to,
                private=not public, endpoint=settings.hf_endpoint,
            )  # fmt: skip
            await session.commit()
            return job.hub_push

    outcome = _run(settings, work)
    if outcome["state"] != "pushed":
        err_console.print(f"[red]Push failed:[/red] {outcome['error']}", highlight=False)
        raise typer.Exit(1)
    console.print(f"Pushed to the Hub: {outcome['url']}", highlight=False)


@app.command("worker")
def worker(
    compute: str = typer.Option("cpu", help="The queues to take: cpu, gpu or all."),
) -> None:
    """Run training jobs from the Celery queue (MODELYARD_JOBS_BACKEND=celery).

    Needs the server's database, data directory and encryption keys; one job at a time."""
    from modelyard.training.celery_jobs import celery_app, queue_name

    if compute not in ("cpu", "gpu", "all"):
        err_console.print("[red]Error:[/red] --compute is cpu, gpu or all.")
        raise typer.Exit(2)
    settings = settings_from_env()
    try:
        celery = celery_app(settings)
    except ModelyardError as exc:
        err_console.print(f"[red]Error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    kinds = ("cpu", "gpu") if compute == "all" else (compute,)
    queues = ",".join(queue_name(settings, kind) for kind in kinds)
    celery.worker_main(
        ["worker", "--pool", "solo", "--concurrency", "1", "--queues", queues,
         "--loglevel", settings.log_level.upper(), "--hostname", f"modelyard-{compute}@%h"]
    )  # fmt: skip


def _show_recommended(chosen: dict[str, Any], *, searched: bool = False) -> None:
    """The values chosen for the data (the user set none of them), or by the search,
    each with its reason."""
    if not chosen:
        console.print("Hyperparameters: all as given (none chosen for the data).")
        return
    title = "Chosen by the search" if searched else "Chosen for the data"
    console.print(f"[bold]{title}[/bold] (set them to override):", highlight=False)
    for name, item in chosen.items():
        value = Recommendation.model_validate(item)
        console.print(f"  {name} = {value.value:g}" if isinstance(value.value, float)
                      else f"  {name} = {value.value}", highlight=False, end="")  # fmt: skip
        console.print(f"  ({value.reason})", highlight=False, style="dim")


def _show_pace(record: PaceRecord) -> None:
    """How the recommended schedule was held to the CPU time target."""
    measured = (
        f"measured {record.seconds_per_step:.2g} s per step; the CPU time target is "
        f"{record.target_s:g} s"
    )
    if record.epochs is None:
        console.print(
            f"Time: the recommended schedule should take about {record.estimated_s:.0f} s "
            f"({measured}).",
            highlight=False,
        )
        return
    console.print(
        f"[bold]Held to the time target[/bold]: epochs = {record.epochs:g} ({measured}; "
        f"the recommended schedule would take about {record.estimated_s:.0f} s). Set "
        "--epochs to train more.",
        highlight=False,
    )


def _show_trial(trial: dict[str, Any]) -> None:
    """One search trial, as it ends."""
    params = ", ".join(
        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in (trial.get("params") or {}).items()
    )
    metric = trial.get("metric")
    console.print(
        f"  trial {trial.get('number')}: {trial.get('state')} · {params} · "
        f"metric {_number(metric)} · {trial.get('seconds', 0):.1f} s"
        + (f" ({trial['note']})" if trial.get("note") else ""),
        highlight=False,
    )


def _show_search(search: SearchRecord) -> None:
    """The ``auto`` search's trials and what it chose."""
    count = len(search.trials)
    console.print(
        f"[bold]Search:[/bold] {count} trial{'' if count == 1 else 's'} within a "
        f"{search.time_budget_s:g} s budget ({search.search_seconds:g} s; each on "
        f"{search.trial_train_examples} training examples), by {search.metric}; "
        f"stopped: {search.stopped}",
        highlight=False,
    )
    table = Table("trial", *search.space, search.metric, "state", "seconds")
    for trial in search.trials:
        cells = [
            _number(trial.params.get(name), 3) if isinstance(trial.params.get(name), float)
            else str(trial.params.get(name, "-"))
            for name in search.space
        ]  # fmt: skip
        mark = " (best)" if trial.number == search.best_trial else ""
        table.add_row(
            f"{trial.number}{mark}", *cells, _number(trial.metric), trial.state,
            f"{trial.seconds:.1f}",
        )  # fmt: skip
    console.print(table)
    if search.chosen:
        _show_recommended({k: v.model_dump() for k, v in search.chosen.items()}, searched=True)
    else:
        console.print("  No trial finished: the recommendation is kept.", highlight=False)


def _show_report(metrics: dict[str, Any]) -> None:
    """The test split's report: tuned vs the baseline, per class, the confusion matrix."""
    report = metrics.get("test_report")
    if not isinstance(report, dict):
        return
    baseline = report.get("baseline") or {}
    console.print(f"[bold]Test split[/bold]: {report.get('split', '')}", highlight=False)
    table = Table("", "accuracy", "macro F1")
    table.add_row("fine-tuned", _number(metrics.get("test_accuracy")),
                  _number(metrics.get("test_f1_macro")))  # fmt: skip
    if baseline.get("method"):
        table.add_row("baseline", _number(baseline.get("accuracy")),
                      _number(baseline.get("f1_macro")))  # fmt: skip
    console.print(table)
    if baseline.get("method"):
        console.print(f"  baseline: {baseline['method']}", highlight=False)
    elif baseline.get("skipped"):
        console.print(f"  no baseline: {baseline['skipped']}", highlight=False)
    per_class = Table("label", "precision", "recall", "F1", "support")
    for label, values in (report.get("per_class") or {}).items():
        per_class.add_row(
            label, _number(values["precision"], 3), _number(values["recall"], 3),
            _number(values["f1"], 3), str(values["support"]),
        )  # fmt: skip
    console.print(per_class)
    confusion = report.get("confusion_matrix") or {}
    labels = confusion.get("labels") or []
    matrix = Table("true \\ predicted", *labels, title="Confusion matrix")
    for label, row in zip(labels, confusion.get("rows") or [], strict=False):
        matrix.add_row(label, *(str(count) for count in row))
    console.print(matrix)


def _show_advice(result: AdviceResult) -> None:
    source = f"{result.source} ({result.model})" if result.model else result.source
    console.print(f"[bold]Advice[/bold] from {source}:", highlight=False)
    if result.fallback_reason:
        console.print(f"  (rules used: {result.fallback_reason})", highlight=False)
    hyper = result.advice.hyperparameters.model_dump(exclude_none=True)
    console.print(f"  hyperparameters: {hyper}", highlight=False)
    console.print(f"  strategy: {result.advice.strategy}", highlight=False)
    for source_ in result.advice.dataset_sources:
        console.print(f"  dataset: {source_.name} {source_.url or ''}", highlight=False)
    for note in result.advice.notes:
        console.print(f"  note: {note}", highlight=False)


@app.command("logs")
def logs(job_id: int) -> None:
    """A job's history: state changes, progress, checkpoints, evaluations."""

    async def work(database: Database) -> list[Any]:
        async with database.sessions() as session:
            await jobs.get_job(session, job_id, None)
            return await jobs.events_after(session, job_id)

    for event in _run(settings_from_env(), work):
        data = {k: v for k, v in event.data.items() if k != "time"}
        console.print(f"{event.created_at:%H:%M:%S} {event.kind:<10} {data}", highlight=False)


async def _measured(
    settings: Settings, session: Any, config: TrainingConfig, dataset: Any, token: str | None
) -> AdviceRequestFacts:
    """The facts the worker's recommendation will rest on, measured here (the base model
    located, downloaded if it must be, and the texts tokenized)."""
    from modelyard.local.access import LocalCaller, resolve_local
    from modelyard.local.errors import ModelNotFoundError
    from modelyard.local.sources import locate, trusted_ref

    name = config.resolved_base() or ""
    try:
        ref = await resolve_local(session, name, LocalCaller.of(None), settings)
    except ModelNotFoundError:
        ref = trusted_ref(name)
    source = await locate(ref, token=token)
    path = settings.data_dir.resolve() / dataset.path
    _kind, examples = await asyncio.to_thread(load_examples, path, dataset.format)
    facts = facts_for(
        AdviceRequestFacts(task=config.task, base_model=name, compute_type=config.compute_type),
        dataset,
    )
    return await asyncio.to_thread(measure, config, examples, source.path, ref.name, facts)


def train(
    data: Path = typer.Option(
        ..., "--data", exists=True, dir_okay=False, help="CSV, JSONL, Parquet."
    ),
    task: TaskName = typer.Option(..., "--task", help="The training task."),
    base: str | None = typer.Option(None, "--base", help="Base model (classification: MiniLM)."),
    compute: str = typer.Option("cpu", "--compute", help="cpu or gpu."),
    name: str | None = typer.Option(None, "--name", help="The trained model's name."),
    method: str = typer.Option("full", "--method", help="full or lora (sft)."),
    epochs: float | None = typer.Option(None, help="Passes over the data (default: chosen)."),
    max_steps: int | None = typer.Option(None, help="Stop after this many steps."),
    batch_size: int | None = typer.Option(None, help="Examples per step (default: chosen)."),
    learning_rate: float | None = typer.Option(None, help="Peak learning rate (default: chosen)."),
    max_length: int | None = typer.Option(
        None, help="Tokens per example (default: chosen from the texts' lengths)."
    ),
    checkpoint_steps: int | None = typer.Option(
        None, help="Evaluate and checkpoint every this many steps (default: chosen)."
    ),
    detach: bool = typer.Option(False, help="Only queue the job (a running server trains it)."),
    ask_keys: bool = typer.Option(
        False, "--keys", help="Ask for a Hugging Face token and a Groq key (hidden input)."
    ),
    hf_token: str | None = typer.Option(
        None, envvar="HF_TOKEN", hidden=True, help="Push the model to the Hub with this token."
    ),
    groq_key: str | None = typer.Option(None, envvar="GROQ_API_KEY", hidden=True),
    push_to: str | None = typer.Option(
        None, "--push-to", help="Hub repository (owner/name); default: <you>/<name>."
    ),
    public: bool = typer.Option(False, "--public", help="Create the Hub repository public."),
    advice: bool = typer.Option(
        False,
        "--advice",
        help="Get advice (Groq with a key, else the rules), show it and train with it.",
    ),
    apply: bool = typer.Option(
        True, "--apply/--no-apply", help="With --advice: --no-apply only shows it (no job)."
    ),
    time_budget: str | None = typer.Option(
        None,
        "--time-budget",
        help="Search the learning rate, batch size and epochs not given within this wall "
        "time (300, 300s, 5m, 1h), then train the best: trials and final run together.",
    ),
) -> None:
    """Fine-tune a model on a file and save it as a local model.

    Hyperparameters left out are chosen for the data and the base model (token lengths,
    dataset size, model size) and printed with their reasons; a value given is kept.

    Keys come from HF_TOKEN / GROQ_API_KEY or, with --keys, a hidden prompt (Enter skips
    one); they are used for this job only. Without a token the model stays local."""
    if ask_keys:
        hf_token = typer.prompt(
            "Hugging Face token (Enter to skip)", default="", hide_input=True, show_default=False
        )
        groq_key = typer.prompt(
            "Groq API key (Enter to skip)", default="", hide_input=True, show_default=False
        )
    try:
        secrets = given_secrets(
            JobKeys(
                hf_token=SecretStr(hf_token) if hf_token else None,
                groq_api_key=SecretStr(groq_key) if groq_key else None,
            )
        )
    except ModelyardError as exc:
        err_console.print(f"[red]Error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from None
    try:
        budget = parse_duration(time_budget) if time_budget is not None else None
    except ValueError as exc:
        err_console.print(f"[red]Error:[/red] --time-budget: {exc}", highlight=False)
        raise typer.Exit(2) from None
    try:
        given = {
            "epochs": epochs,
            "max_steps": max_steps,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "max_length": max_length,
            "checkpoint_steps": checkpoint_steps,
            "logging_steps": max(1, min(10, checkpoint_steps)) if checkpoint_steps else None,
        }
        config = TrainingConfig.model_validate(
            {
                "task": task,
                "base_model": base,
                "compute_type": compute,
                "output_name": name,
                "method": method,
                **{key: value for key, value in given.items() if value is not None},
                **({"auto": {"time_budget_s": budget}} if budget is not None else {}),
            }
        )
    except ValueError as exc:
        err_console.print(f"[red]Error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    settings = settings_from_env()
    data_dir = settings.data_dir.resolve()

    async def work(database: Database) -> TrainingJob | None:
        staged = stage_path(data_dir, data.name)
        await asyncio.to_thread(shutil.copyfile, data, staged)
        async with database.sessions() as session:
            dataset = await store_dataset(
                session,
                staged=staged,
                filename=data.name,
                data_dir=data_dir,
                user=None,
                task=task,
                limits=UploadLimits.from_settings(settings),
            )
            kept: dict[str, Any] | None = None
            if advice:
                facts = await _measured(settings, session, config, dataset, secrets.hf_token)
                result = await advise(
                    settings, config, dataset, secrets.groq_api_key, measured=facts
                )
                _show_advice(result)
                _show_recommended(recommend(config, facts, result).recommended or {})
                if not apply:
                    console.print("Not applied (--no-apply): no job was queued.")
                    return None
                kept = result.model_dump(mode="json") | {"applied": True}
            hub = {"repo_id": push_to, "private": not public} if secrets.hf_token else None
            job = await jobs.create_job(
                session, user=None, dataset=dataset, config=config, settings=settings, hub=hub,
                advice=kept,
            )  # fmt: skip
        console.print(
            f"Dataset {dataset.name}: {dataset.num_examples} {dataset.kind} examples. "
            f"Job {job.id} queued (model: {job.output_name}).",
            highlight=False,
        )
        if detach:
            if secrets.hf_token:
                err_console.print(
                    "Note: a detached job cannot take keys (they are never stored); "
                    "the server's job will report the push as failed."
                )
            return None
        runner = TrainingRunner(settings, database, poll_interval=0.2, only_job=job.id)
        runner.submit(job.id, secrets)
        await runner.start()
        try:
            return await _follow(database, job.id, shown=advice)
        except asyncio.CancelledError:
            async with database.sessions() as session:
                await jobs.request_cancel(session, await jobs.get_job(session, job.id, None))
            await runner.tick()
            raise
        finally:
            await runner.aclose()

    try:
        job = _run(settings, work)
    except KeyboardInterrupt:
        err_console.print("Interrupted: the job was cancelled.")
        raise typer.Exit(130) from None
    if job is None:
        return
    if job.state != "succeeded":
        err_console.print(
            f"[red]Job {job.id} {job.state}.[/red] {job.error or ''}", highlight=False
        )
        raise typer.Exit(1)
    final = job.metrics or {}
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if isinstance(v, int | float))
    console.print(f"Metrics: {metrics}", highlight=False)
    _show_report(final)
    push = job.hub_push or {}
    if push.get("state") == "pushed":
        console.print(f"Pushed to the Hub: {push['url']}", highlight=False)
    elif push.get("state") == "failed":
        err_console.print(f"[yellow]Hub push failed:[/yellow] {push['error']}", highlight=False)
    console.print(
        f"Model saved as [bold]{job.output_name}[/bold]: use it as local/{job.output_name}.",
        highlight=False,
    )
