"""Text generation with a causal LM or a seq2seq model: prompts, batched and streamed runs.

Prompts: raw text (a legacy completion's prompt) is tokenized as it is. Chat messages: a
causal LM with a chat template gets ``apply_chat_template(…,
add_generation_prompt=True)``; one without gets a plain transcript (``System: …`` /
``User: …`` lines ending with ``Assistant:``). A seq2seq model (flan-t5) gets the user's
text as is (after any system text) for a single turn, the transcript otherwise.

Sampling: ``temperature`` 0 (or ``top_p`` 0) is greedy; with neither given, the model's
own ``generation_config`` decides (greedy when it does not sample); its ``top_k`` and
repetition settings always apply. ``seed`` makes a sampled run reproducible: it runs
alone, in a forked torch RNG seeded with it. Every sampled run holds one process-wide
lock, since torch's RNG is global; greedy runs do not.

Batching (see :meth:`TextGenerator.batch_key`): greedy requests share ``generate`` calls,
and so do unseeded sampled requests with equal settings (their outputs were random
anyway); a seeded sampled request always runs alone, so that its seed alone decides it.
Streams run one at a time per model.

Limits: ``max_tokens`` (default :data:`DEFAULT_MAX_TOKENS`) is capped by the room left in
the context window; stop sequences end a row as soon as they appear, and the text is cut
before them. Counting: ``prompt_tokens`` are the prompt's token ids, ``completion_tokens``
the tokens generated up to the end (an end-of-sequence token counts, as it was generated;
with a stop sequence, up to the token that completed it).

All methods are synchronous and use the tokenizer, so a model runs one job at a time (the
manager's worker): :meth:`TextGenerator.complete` runs a batch of compatible requests in one
padded ``generate`` call (left padding for causal LMs), :meth:`TextGenerator.stream` one
request with a streamer that hands text to a callback as it is generated.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from modelyard.errors import BadRequestError
from modelyard.local.types import (
    Completion,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    Message,
)

__all__ = ["DEFAULT_MAX_TOKENS", "Sampling", "TextGenerator"]

#: The completion limit when a request sets none.
DEFAULT_MAX_TOKENS = 512
#: torch's RNG is process-wide: sampled runs take turns (greedy runs need no RNG).
_SAMPLING_LOCK = threading.Lock()

_SPEAKERS = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class Sampling:
    """The decoding settings a run uses once the model's defaults are applied."""

    do_sample: bool
    temperature: float = 1.0
    top_p: float = 1.0

    def generate_kwargs(self) -> dict[str, Any]:
        if not self.do_sample:
            return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p}


@dataclass(frozen=True)
class _Job:
    ids: list[int]
    limit: int
    stops: tuple[str, ...]


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [i for i in (text.find(stop) for stop in stops) if i >= 0]
    return min(found) if found else None


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters could still become a stop sequence (or a character)."""
    hold = max(
        (size for stop in stops for size in range(1, len(stop)) if text.endswith(stop[:size])),
        default=0,
    )
    undecided = len(text) - len(text.rstrip("\ufffd"))
    return max(hold, undecided)


class _RowLimits(StoppingCriteria):
    """Ends each row at its own token limit or stop sequence; every row once ``halt`` is set."""

    def __init__(
        self,
        start: int,
        jobs: Sequence[_Job],
        decode: Callable[[list[int]], str],
        halt: threading.Event | None = None,
    ) -> None:
        self.start = start
        self.limits = [job.limit for job in jobs]
        self.stops = [job.stops for job in jobs]
        # A stop of n characters spans at most 4n byte-level tokens (plus a partial one).
        self.windows = [4 * max((len(s) for s in job.stops), default=0) + 4 for job in jobs]
        self.decode = decode
        self.halt = halt

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        produced = input_ids.shape[1] - self.start
        done = [produced >= limit for limit in self.limits]
        if self.halt is not None and self.halt.is_set():
            done = [True] * len(done)
        for row, stops in enumerate(self.stops):
            if stops and not done[row]:
                begin = max(self.start, input_ids.shape[1] - self.windows[row])
                done[row] = (
                    _first_stop(self.decode(input_ids[row, begin:].tolist()), stops) is not None
                )
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class _StreamWriter(BaseStreamer):
    """Receives tokens from ``generate`` and emits text once it cannot become a stop."""

    def __init__(
        self,
        generator: TextGenerator,
        job: _Job,
        emit: Callable[[str], None],
        halt: threading.Event,
    ) -> None:
        self.generator = generator
        self.job = job
        self.emit = emit
        self.halt = halt
        self.ids: list[int] = []
        self.sent = ""
        self.text = ""
        self.reason: FinishReason | None = None
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate hands over the prompt first
            self.prompt_seen = True
            return
        if self.reason is not None:
            return
        for token in value.reshape(-1).tolist():
            self.ids.append(int(token))
            text = self.generator.decode(self.ids)
            cut = _first_stop(text, self.job.stops)
            if cut is not None:
                self._send(text[:cut])
                self.reason = "stop"
            elif token in self.generator.eos_ids or len(self.ids) >= self.job.limit:
                self._send(text)
                self.reason = "stop" if token in self.generator.eos_ids else "length"
            else:
                self._send(text[: len(text) - _held_back(text, self.job.stops)])
            if self.reason is not None:
                self.halt.set()
                return

    def _send(self, ready: str) -> None:
        """Emit what ``ready`` adds to the text sent so far (sent text is never taken back)."""
        if len(ready) > len(self.sent):
            self.emit(ready[len(self.sent) :])
            self.sent = ready
        self.text = self.sent

    def end(self) -> None:
        if self.reason is None:  # ended by the model's own limits, or halted
            self._send(self.generator.decode(self.ids))
            self.reason = "length"


class TextGenerator:
    """A causal LM or seq2seq model with its tokenizer."""

    def __init__(self, model: Any, tokenizer: Any, task: str, device: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.task = task
        self.device = device
        self.module: torch.nn.Module = model
        config = model.generation_config
        eos = config.eos_token_id
        self.eos_ids: frozenset[int] = frozenset(
            [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        )
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = config.pad_token_id
        if pad is None:
            pad = min(self.eos_ids) if self.eos_ids else 0
        self.pad_id: int = int(pad)
        self.context = self._context_window()

    def _context_window(self) -> int | None:
        config = self.model.config
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        limit = getattr(self.tokenizer, "model_max_length", None)
        return limit if isinstance(limit, int) and 0 < limit < 1_000_000 else None

    # -- prompts and text ---------------------------------------------------------------

    def decode(self, ids: list[int]) -> str:
        text: str = self.tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return text

    @staticmethod
    def _transcript(messages: Sequence[Message]) -> str:
        lines = [f"{_SPEAKERS.get(role, role.title())}: {text}" for role, text in messages]
        return "\n".join([*lines, "Assistant:"])

    def prompt_ids(self, messages: Sequence[Message] | str) -> list[int]:
        """The prompt's token ids (raw text, chat template, transcript or plain text)."""
        if isinstance(messages, str):
            return list(self.tokenizer(messages)["input_ids"])
        if self.task == "seq2seq":
            turns = [text for role, text in messages if role != "system"]
            system = [text for role, text in messages if role == "system"]
            if len(turns) == 1 and messages[-1][0] == "user":
                text = "\n\n".join([*system, turns[0]])
            else:
                text = self._transcript(messages)
            return list(self.tokenizer(text)["input_ids"])
        if getattr(self.tokenizer, "chat_template", None):
            chat = [{"role": role, "content": text} for role, text in messages]
            text = self.tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, tokenize=False
            )
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return list(self.tokenizer(self._transcript(messages))["input_ids"])

    # -- settings -----------------------------------------------------------------------

    def sampling(self, params: GenerationParams) -> Sampling:
        """The decoding settings for ``params`` (the model's defaults fill the gaps)."""
        config = self.model.generation_config
        if params.temperature == 0 or params.top_p == 0:
            return Sampling(False)
        model_samples = bool(config.do_sample)
        if params.temperature is None and params.top_p is None and not model_samples:
            return Sampling(False)
        default_t = float(config.temperature or 1.0) if model_samples else 1.0
        default_p = float(config.top_p or 1.0) if model_samples else 1.0
        return Sampling(
            True,
            default_t if params.temperature is None else params.temperature,
            default_p if params.top_p is None else params.top_p,
        )

    def batch_key(self, params: GenerationParams) -> Hashable | None:
        """Requests with equal keys may share a ``generate`` call; ``None``: run alone.

        Greedy requests batch together, and unseeded sampled ones with the same settings;
        a seeded request runs alone so that its seed alone decides its output.
        """
        sampling = self.sampling(params)
        if sampling.do_sample and params.seed is not None:
            return None
        return sampling

    def _job(self, request: GenerationRequest) -> _Job:
        ids = self.prompt_ids(request.messages)
        param = "prompt" if isinstance(request.messages, str) else "messages"
        if not ids:
            raise BadRequestError("The prompt is empty.", param=param)
        limit = request.params.max_tokens or DEFAULT_MAX_TOKENS
        if self.context is not None and self.task == "causal":
            room = self.context - len(ids)
            if room < 1:
                raise BadRequestError(
                    f"The prompt has {len(ids)} tokens; this model's context window is "
                    f"{self.context}. Shorten the conversation.",
                    param=param,
                    code="context_length_exceeded",
                )
            limit = min(limit, room)
        return _Job(ids, limit, tuple(s for s in request.params.stop if s))

    @contextlib.contextmanager
    def _rng(self, sampling: Sampling, seed: int | None) -> Iterator[None]:
        if not sampling.do_sample:
            yield
            return
        with _SAMPLING_LOCK:
            if seed is None:
                yield
                return
            devices = [torch.device(self.device).index or 0] if self.device != "cpu" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                yield

    def _inputs(self, jobs: Sequence[_Job]) -> dict[str, torch.Tensor]:
        width = max(len(job.ids) for job in jobs)
        ids = torch.full((len(jobs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for row, job in enumerate(jobs):
            n = len(job.ids)
            span = slice(width - n, width) if self.task == "causal" else slice(0, n)
            ids[row, span] = torch.tensor(job.ids, dtype=torch.long)
            mask[row, span] = 1
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}

    def _generate(
        self,
        jobs: Sequence[_Job],
        sampling: Sampling,
        halt: threading.Event | None = None,
        streamer: BaseStreamer | None = None,
    ) -> tuple[torch.Tensor, int]:
        inputs = self._inputs(jobs)
        start = inputs["input_ids"].shape[1] if self.task == "causal" else 1
        criteria = StoppingCriteriaList([_RowLimits(start, jobs, self.decode, halt)])
        output = self.model.generate(
            **inputs,
            max_new_tokens=max(job.limit for job in jobs),
            stopping_criteria=criteria,
            pad_token_id=self.pad_id,
            streamer=streamer,
            **sampling.generate_kwargs(),
        )
        return output, start

    def _finish(self, ids: list[int], job: _Job) -> tuple[str, int, FinishReason]:
        end, reason = min(len(ids), job.limit), "length"
        for position, token in enumerate(ids[:end]):
            if token in self.eos_ids:
                end, reason = position + 1, "stop"
                break
        ids = ids[:end]
        text = self.decode(ids)
        cut = _first_stop(text, job.stops)
        if cut is None:
            return text, len(ids), reason  # type: ignore[return-value]
        low, high = 1, len(ids)  # the first prefix whose text holds a stop
        while low < high:
            middle = (low + high) // 2
            if _first_stop(self.decode(ids[:middle]), job.stops) is None:
                low = middle + 1
            else:
                high = middle
        return text[:cut], low, "stop"

    # -- runs ---------------------------------------------------------------------------

    def complete(self, requests: Sequence[GenerationRequest]) -> list[Completion | Exception]:
        """Run ``requests`` (equal :meth:`batch_key`) in one padded ``generate`` call.

        A request that cannot run (a prompt too long) gets its error in its place.
        """
        results: list[Completion | Exception | None] = [None] * len(requests)
        jobs: list[tuple[int, _Job]] = []
        for position, request in enumerate(requests):
            try:
                jobs.append((position, self._job(request)))
            except BadRequestError as error:
                results[position] = error
        if not jobs:
            return [r for r in results if r is not None]
        params = requests[jobs[0][0]].params
        sampling = self.sampling(params)
        with self._rng(sampling, params.seed):
            output, start = self._generate([job for _, job in jobs], sampling)
        rows = output[:, start:].cpu().tolist()
        for (position, job), row in zip(jobs, rows, strict=True):
            text, count, reason = self._finish(row, job)
            results[position] = Completion(text, reason, len(job.ids), count)
        return [r for r in results if r is not None]

    def stream(
        self,
        request: GenerationRequest,
        emit: Callable[[str], None],
        halt: threading.Event,
    ) -> Completion:
        """Run one request, handing each piece of text to ``emit`` as soon as it is final.

        Setting ``halt`` (from another thread) ends the run after the current token.
        """
        job = self._job(request)
        sampling = self.sampling(request.params)
        writer = _StreamWriter(self, job, emit, halt)
        with self._rng(sampling, request.params.seed):
            self._generate([job], sampling, halt, writer)
        reason: FinishReason = writer.reason or "length"
        return Completion(writer.text, reason, len(job.ids), len(writer.ids))
