"""``modelyard quick-test`` and ``modelyard models pull | list | rm``: local models.

``quick-test`` loads a model as the gateway would and runs it once (load time, tokens per
second). ``models`` manages the Hugging Face cache the local runtime downloads into
(``HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``). The Hugging Face token comes
from ``HF_TOKEN`` / ``HUGGINGFACE_TOKEN`` (never printed); the Hub endpoint from
``HF_ENDPOINT``. torch and transformers are imported only by these commands.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer

from modelyard.cli.common import console, err_console, settings_from_env
from modelyard.errors import ModelyardError
from modelyard.providers.kinds import ProviderKind
from modelyard.providers.system_keys import load_system_keys

__all__ = ["app", "quick_test"]

app = typer.Typer(help="Local models: the Hugging Face cache and built-in models.")

CACHE_DIR_HELP = "The Hugging Face cache (default: HF_HUB_CACHE or ~/.cache/huggingface/hub)."


def _hf_token() -> str | None:
    keys = load_system_keys().get(ProviderKind.HUGGINGFACE) or []
    return keys[0] if keys else None


def _fail(error: ModelyardError) -> typer.Exit:
    err_console.print(f"[red]{error.message}[/red]", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def quick_test(
    model: str = typer.Argument(..., help="Hub id, directory, trained model or built-in name."),
    prompt: str = typer.Option("Say hello in one short sentence.", help="The user message."),
    max_tokens: int = typer.Option(64, min=1, help="Tokens to generate at most."),
) -> None:
    """Load MODEL and run it once: load time, answer, tokens per second."""
    settings = settings_from_env()
    from modelyard.local.manager import ModelManager
    from modelyard.local.types import GenerationParams

    async def run() -> None:
        manager = ModelManager.from_settings(settings)
        try:
            started = time.perf_counter()
            loaded = await manager.get(model, token=_hf_token())
            console.print(
                f"Loaded {model} ({loaded.task}, {loaded.bytes / 2**20:.1f} MiB, "
                f"{loaded.device}) in {time.perf_counter() - started:.2f} s"
            )
            started = time.perf_counter()
            if loaded.task == "embedding":
                embeddings = await loaded.embed([prompt])
                seconds = time.perf_counter() - started
                console.print(
                    f"{embeddings.vectors.shape[1]} dimensions, {embeddings.tokens} tokens "
                    f"in {seconds * 1000:.1f} ms"
                )
                return
            if loaded.task == "classification":
                for result in await loaded.classify([prompt]):
                    console.print(f"{result.label} ({result.score:.3f})")
                return
            params = GenerationParams(max_tokens=max_tokens, temperature=0)
            completion = await loaded.complete([("user", prompt)], params)
            seconds = time.perf_counter() - started
            console.print(completion.text, highlight=False, markup=False)
            rate = completion.completion_tokens / seconds if seconds > 0 else 0.0
            console.print(
                f"{completion.completion_tokens} tokens in {seconds:.2f} s: {rate:.1f} tokens/s "
                f"(prompt {completion.prompt_tokens} tokens, finish: "
                f"{completion.finish_reason})"
            )
        finally:
            await manager.aclose()

    try:
        asyncio.run(run())
    except ModelyardError as error:
        raise _fail(error) from None


@app.command()
def pull(name: str = typer.Argument(..., help="A Hugging Face Hub id.")) -> None:
    """Download NAME into the Hugging Face cache (checking first that it can run here)."""
    settings = settings_from_env()
    from modelyard.local.sources import locate

    try:
        source = asyncio.run(locate(name, token=_hf_token(), endpoint=settings.hf_endpoint))
    except ModelyardError as error:
        raise _fail(error) from None
    console.print(f"{name}: {source.task} model ({source.model_type}) at {source.path}")


@app.command("list")
def list_models(
    cache_dir: Path | None = typer.Option(None, help=CACHE_DIR_HELP),
) -> None:
    """The built-in models and the models in the Hugging Face cache."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    from modelyard.local.sources import BUILT_IN_MODELS

    console.print("[bold]Built-in[/bold]")
    for alias, path in BUILT_IN_MODELS.items():
        console.print(f"  {alias}  {path()}", highlight=False)
    console.print("[bold]Hugging Face cache[/bold]")
    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound:
        console.print("  (empty)")
        return
    repos = sorted((r for r in info.repos if r.repo_type == "model"), key=lambda r: r.repo_id)
    for repo in repos:
        console.print(
            f"  {repo.repo_id}  {repo.size_on_disk_str}  last used {repo.last_accessed_str}",
            highlight=False,
        )
    if not repos:
        console.print("  (empty)")


@app.command()
def rm(
    name: str = typer.Argument(..., help="A Hub id in the cache."),
    cache_dir: Path | None = typer.Option(None, help=CACHE_DIR_HELP),
) -> None:
    """Remove NAME (every revision) from the Hugging Face cache."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound:
        info = None
    repo = next(
        (r for r in (info.repos if info else ()) if r.repo_type == "model" and r.repo_id == name),
        None,
    )
    if info is None or repo is None:
        err_console.print(f"{name} is not in the Hugging Face cache.", highlight=False)
        raise typer.Exit(1)
    strategy = info.delete_revisions(*(revision.commit_hash for revision in repo.revisions))
    strategy.execute()
    console.print(f"Removed {name} ({strategy.expected_freed_size_str}).", highlight=False)
