"""Local models: the gateway's in-process runtime against transformers and
sentence-transformers called directly, on the same model and inputs (issue: local models).

The gateway is a served process (``modelyard serve``, one worker, on 127.0.0.1), so each
figure through it includes HTTP, auth, routing and JSON. The model is a random 4-layer,
256-wide Llama with a byte-level BPE tokenizer, built offline in a temporary directory;
embeddings use the packaged all-MiniLM-L6-v2.

Targets: generation tokens/s through the gateway ≥ 90% of ``model.generate`` (greedy, same
prompt ids, same length); embeddings/s through the gateway ≥ 90% of
``SentenceTransformer.encode`` (batches of 32 both ways; the gateway answers in base64, as
the official SDK asks); 8 concurrent generations finish ≥ 3x sooner than the same 8 one
after another (dynamic batching).

Run alone: ``.venv/bin/python -m bench.local [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from bench.gateway import _env, bench_token
from bench.processes import background, free_port

PROMPT = "Write a short story about a fox who learns to run a language model on a laptop."
SENTENCES = [
    f"Sentence number {i}: the quick brown fox jumps over the lazy dog {i % 7} times."
    for i in range(256)
]
BATCH = 32
CONCURRENT = 8
#: torch threads on both sides: one keeps the figures steady on a shared machine, where
#: more threads than free cores make every parallel region wait for a descheduled thread.
DEFAULT_THREADS = 1


def _build_model(directory: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.local.builders import build_causal

    return build_causal(directory, hidden=256, layers=4, heads=8)


def _median_rate(samples: list[tuple[int, float]]) -> float:
    return statistics.median(count / seconds for count, seconds in samples)


class _Direct:
    """The model and the MiniLM loaded with the libraries themselves, in this process."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from modelyard.local.sources import BUILT_IN_MODELS

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        self.model = model.eval()
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False
        )
        self.ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        self.prompt_tokens = int(self.ids["input_ids"].shape[1])
        minilm = str(BUILT_IN_MODELS["all-MiniLM-L6-v2"]())
        self.embedder = SentenceTransformer(minilm, device="cpu")

    def generate(self, tokens: int) -> tuple[int, float]:
        started = time.perf_counter()
        out = self.model.generate(
            **self.ids, max_new_tokens=tokens, do_sample=False, pad_token_id=0
        )
        return int(out.shape[1]) - self.prompt_tokens, time.perf_counter() - started

    def embed(self, batches: list[list[str]]) -> tuple[int, float]:
        started = time.perf_counter()
        for batch in batches:
            self.embedder.encode(batch, batch_size=BATCH, show_progress_bar=False)
        return sum(len(b) for b in batches), time.perf_counter() - started


def _chat(client: httpx.Client, model: str, prompt: str, tokens: int) -> dict[str, Any]:
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": tokens,
            "temperature": 0,
        },
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def _gateway_generate(
    client: httpx.Client, model: str, tokens: int
) -> tuple[int, float, int, float]:
    """Tokens, seconds, prompt tokens and the gateway's own milliseconds (its header)."""
    started = time.perf_counter()
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": tokens,
            "temperature": 0,
        },
    )
    seconds = time.perf_counter() - started
    response.raise_for_status()
    usage = response.json()["usage"]
    overhead = float(response.headers["x-modelyard-overhead-ms"])
    return usage["completion_tokens"], seconds, usage["prompt_tokens"], overhead


def _gateway_embed(client: httpx.Client, batches: list[list[str]]) -> tuple[int, float]:
    started = time.perf_counter()
    for batch in batches:
        response = client.post(
            "/v1/embeddings",
            json={"model": "all-MiniLM-L6-v2", "input": batch, "encoding_format": "base64"},
        )
        response.raise_for_status()
    return sum(len(b) for b in batches), time.perf_counter() - started


def _concurrency(client: httpx.Client, model: str, tokens: int, runs: int) -> dict[str, float]:
    prompts = [f"{PROMPT} Variation {i}: {'and then ' * i}" for i in range(CONCURRENT)]
    sequential, concurrent = [], []
    with ThreadPoolExecutor(CONCURRENT) as pool:
        for _ in range(runs):
            started = time.perf_counter()
            one_by_one = [_chat(client, model, p, tokens) for p in prompts]
            sequential.append(time.perf_counter() - started)
            started = time.perf_counter()
            together = list(pool.map(lambda p: _chat(client, model, p, tokens), prompts))
            concurrent.append(time.perf_counter() - started)
            same = [a["choices"][0]["message"]["content"] for a in one_by_one] == [
                a["choices"][0]["message"]["content"] for a in together
            ]
            if not same:
                raise RuntimeError("concurrent answers differ from sequential ones")
    seq, con = statistics.median(sequential), statistics.median(concurrent)
    return {"sequential_s": seq, "concurrent_s": con, "speedup": seq / con}


def run(quick: bool = False, threads: int = DEFAULT_THREADS) -> dict[str, Any]:
    """Measure and return the figures (``quick`` for a smoke run).

    Direct and gateway runs alternate (after a warm-up each), so that both see the same
    machine; each figure is the median of the runs. Both sides compute with ``threads``
    torch threads (0: torch's default), so that neither has more cores than the other.
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    tokens = 32 if quick else 128
    runs = 3 if quick else 9
    batches = [SENTENCES[i : i + BATCH] for i in range(0, len(SENTENCES), BATCH)]
    if quick:
        batches = batches[:2]
    app_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        model_dir = _build_model(data / "bench-llama")
        model = f"local/{model_dir}"
        env = _env(data, app_port, data / "unused.yaml")
        env.pop("MODELYARD_CONFIG")
        env["MODELYARD_LOCAL_MAX_BATCH"] = str(CONCURRENT)
        if threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        token = bench_token(env)
        base = f"http://127.0.0.1:{app_port}"
        app_cmd = [sys.executable, "-m", "modelyard", "serve", "--workers", "1"]
        direct = _Direct(model_dir)
        with (
            background(app_cmd, env=env, ready_url=f"{base}/healthz"),
            httpx.Client(
                base_url=base,
                headers={"authorization": f"Bearer {token}"},
                timeout=300,
                limits=httpx.Limits(max_connections=CONCURRENT * 2),
            ) as client,
        ):
            direct.generate(tokens)  # warm-up, and the gateway loads both models
            _gateway_generate(client, model, tokens)
            direct.embed(batches[:1])
            _gateway_embed(client, batches[:1])
            generated: dict[str, list[tuple[int, float]]] = {"direct": [], "gateway": []}
            embedded: dict[str, list[tuple[int, float]]] = {"direct": [], "gateway": []}
            prompt_tokens, overheads = 0, []
            for _ in range(runs):
                generated["direct"].append(direct.generate(tokens))
                count, seconds, prompt_tokens, overhead = _gateway_generate(client, model, tokens)
                generated["gateway"].append((count, seconds))
                overheads.append(overhead)
            for _ in range(runs):
                embedded["direct"].append(direct.embed(batches))
                embedded["gateway"].append(_gateway_embed(client, batches))
            concurrency = _concurrency(client, model, 16 if quick else 64, max(1, runs // 2))
    if prompt_tokens != direct.prompt_tokens:
        raise RuntimeError(f"prompt tokens differ: {prompt_tokens} vs {direct.prompt_tokens}")
    return {
        "tokens": tokens,
        "prompt_tokens": prompt_tokens,
        "generation": (_median_rate(generated["direct"]), _median_rate(generated["gateway"])),
        "embeddings": (_median_rate(embedded["direct"]), _median_rate(embedded["gateway"])),
        "inputs": sum(len(b) for b in batches),
        "concurrency": concurrency,
        "overhead_ms": statistics.median(overheads),
        "threads": threads or "torch's default",
    }


def report(figures: dict[str, Any]) -> str:
    """The Markdown section for the figures."""
    direct, via = figures["generation"]
    e_direct, e_via = figures["embeddings"]
    c = figures["concurrency"]
    versions = ", ".join(
        f"{name} {version(name)}" for name in ("torch", "transformers", "sentence-transformers")
    )
    return "\n".join(
        [
            "## Local models (served gateway on 127.0.0.1 vs the libraries directly, CPU)",
            "",
            f"One `modelyard serve` worker; direct and gateway runs alternate; medians; "
            f"torch threads on both sides: {figures['threads']}. "
            f"{versions}.",
            "",
            "| measure | direct | through modelyard | ratio | target |",
            "| --- | ---: | ---: | ---: | --- |",
            f"| generation, 4-layer 256-wide Llama, {figures['prompt_tokens']} prompt + "
            f"{figures['tokens']} new tokens, greedy | {direct:.1f} tokens/s | "
            f"{via:.1f} tokens/s | {via / direct:.2f} | ≥ 0.90 |",
            f"| embeddings, all-MiniLM-L6-v2, {figures['inputs']} sentences in batches of "
            f"{BATCH} | {e_direct:.1f} /s | {e_via:.1f} /s | {e_via / e_direct:.2f} | ≥ 0.90 |",
            "",
            f"The gateway's own time per generation request (`x-modelyard-overhead-ms`, "
            f"median): {figures['overhead_ms']:.2f} ms; the rest is the model and HTTP.",
            "",
            "| 8 generations (64 tokens each, greedy) | one after another | all at once | "
            "speedup | target |",
            "| --- | ---: | ---: | ---: | --- |",
            f"| through modelyard | {c['sequential_s']:.2f} s | {c['concurrent_s']:.2f} s | "
            f"{c['speedup']:.1f}x | ≥ 3x |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help="torch threads (0: its default)"
    )
    args = parser.parse_args()
    print(report(run(quick=args.quick, threads=args.threads)))


if __name__ == "__main__":
    main()
