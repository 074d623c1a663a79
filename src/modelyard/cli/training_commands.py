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

from modelyard.cli.common import console, err_console, settings_from_env
from modelyard.config import Settings
from modelyard.db.engine import Database, create_database
from modelyard.db.models import TrainingJob
from modelyard.errors import ModelyardError
from modelyard.training import jobs
from modelyard.training.advice import AdviceResult
from modelyard.training.advisor import advise
from modelyard.training.bounds import UploadLimits
from modelyard.training.config import TaskName, TrainingConfig
from modelyard.training.hub import push_trained_model
from modelyard.training.keys import JobKeys, given_secrets
from modelyard.training.runner import TrainingRunner
from modelyard.training.uploads import stage_path, store_dataset

__all__ = ["app", "train"]

app = typer.Typer(help="Training jobs.", no_args_is_help=True)


def _run(settings: Settings, work: Any) -> Any:
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


async def _follow(database: Database, job_id: int) -> TrainingJob:
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
        while True:
            async with database.sessions() as session:
                job = await jobs.get_job(session, job_id, None)
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
    console.print(f"Config: {job.config}", highlight=False)


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


def train(
    data: Path = typer.Option(
        ..., "--data", exists=True, dir_okay=False, help="CSV, JSONL, Parquet."
    ),
    task: TaskName = typer.Option(..., "--task", help="The training task."),
    base: str | None = typer.Option(None, "--base", help="Base model (classification: MiniLM)."),
    compute: str = typer.Option("cpu", "--compute", help="cpu or gpu."),
    name: str | None = typer.Option(None, "--name", help="The trained model's name."),
    method: str = typer.Option("full", "--method", help="full or lora (sft)."),
    epochs: float = typer.Option(1.0, help="Passes over the data."),
    max_steps: int | None = typer.Option(None, help="Stop after this many steps."),
    batch_size: int = typer.Option(8, help="Examples per step."),
    learning_rate: float = typer.Option(5e-5, help="Peak learning rate."),
    checkpoint_steps: int = typer.Option(50, help="A checkpoint every this many steps."),
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
        False, "--advice", help="Show hyperparameter advice (Groq with a key, else rules)."
    ),
) -> None:
    """Fine-tune a model on a file and save it as a local model.

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
        config = TrainingConfig.model_validate(
            {
                "task": task,
                "base_model": base,
                "compute_type": compute,
                "output_name": name,
                "method": method,
                "epochs": epochs,
                "max_steps": max_steps,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "checkpoint_steps": checkpoint_steps,
                "logging_steps": max(1, min(10, checkpoint_steps)),
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
            if advice:
                _show_advice(await advise(settings, config, dataset, secrets.groq_api_key))
            hub = {"repo_id": push_to, "private": not public} if secrets.hf_token else None
            job = await jobs.create_job(
                session, user=None, dataset=dataset, config=config, settings=settings, hub=hub
            )
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
            return await _follow(database, job.id)
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
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in (job.metrics or {}).items())
    console.print(f"Metrics: {metrics}", highlight=False)
    push = job.hub_push or {}
    if push.get("state") == "pushed":
        console.print(f"Pushed to the Hub: {push['url']}", highlight=False)
    elif push.get("state") == "failed":
        err_console.print(f"[yellow]Hub push failed:[/yellow] {push['error']}", highlight=False)
    console.print(
        f"Model saved as [bold]{job.output_name}[/bold]: use it as local/{job.output_name}.",
        highlight=False,
    )
