"""Supervised fine-tuning of causal LMs on chats, fully or with LoRA; eval loss, perplexity.

Only the assistant messages are learned: the other tokens get the label ``-100``. The
tokenizer, the model (4-bit for QLoRA) and the LoRA merge come from :mod:`.causal`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.training.tasks.causal import load_causal, load_tokenizer
from modelyard.training.tasks.prepared import Prepared, split_examples
from modelyard.training.tasks.spec import TaskAdvice, TrainingTask

if TYPE_CHECKING:
    from modelyard.training.advice import AdviceRequestFacts
    from modelyard.training.config import TrainingConfig

__all__ = ["TASK", "advise", "check_base", "collate", "encode_chat", "prepare"]

IGNORE = -100


def _render(tokenizer: Any, messages: list[dict[str, str]], *, prompt: bool) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
    return str(text)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_chat(
    tokenizer: Any, messages: list[dict[str, str]], max_length: int
) -> dict[str, list[int]] | None:
    """Token ids with labels on the assistant turns only (``None``: nothing left to learn)."""
    input_ids = _ids(tokenizer, _render(tokenizer, messages, prompt=False))
    labels = [IGNORE] * len(input_ids)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_ids(tokenizer, _render(tokenizer, messages[:index], prompt=True)))
        end = len(_ids(tokenizer, _render(tokenizer, messages[: index + 1], prompt=False)))
        labels[start:end] = input_ids[start:end]
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    if all(label == IGNORE for label in labels):
        return None
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def collate(pad_id: int) -> Any:
    """A collator padding ids with ``pad_id``, labels with -100, on the right."""
    import torch

    def pad(batch: list[dict[str, Any]]) -> dict[str, Any]:
        width = max(len(row["input_ids"]) for row in batch)
        out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
        for row in batch:
            gap = width - len(row["input_ids"])
            out["input_ids"].append(row["input_ids"] + [pad_id] * gap)
            out["attention_mask"].append(row["attention_mask"] + [0] * gap)
            out["labels"].append(row["labels"] + [IGNORE] * gap)
        return {key: torch.tensor(value) for key, value in out.items()}

    return pad


def _perplexity(metrics: dict[str, float]) -> dict[str, float]:
    loss = metrics.get("eval_loss")
    if loss is not None:
        metrics["perplexity"] = math.exp(min(loss, 50.0))
    return metrics


def prepare(config: TrainingConfig, examples: list[dict[str, Any]], base: Path) -> Prepared:
    """Load the causal LM (wrapped with LoRA when asked) and encode the chats."""
    tokenizer = load_tokenizer(base)
    model, finish, card = load_causal(config, base)
    train, held_out = split_examples(examples, config.eval_fraction, config.seed)

    def encode(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        encoded = (encode_chat(tokenizer, row["messages"], config.max_length) for row in rows)
        return [row for row in encoded if row is not None]

    train_rows, eval_rows = encode(train), encode(held_out)
    if not train_rows or not eval_rows:
        raise ValueError(
            f"no assistant tokens left within max_length={config.max_length}; "
            "raise max_length or shorten the prompts"
        )
    return Prepared(
        model=model,
        tokenizer=tokenizer,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=collate(int(tokenizer.pad_token_id)),
        finish=finish,
        card=card,
        derive_metrics=_perplexity,
    )


def _chat_text(tokenizer: Any, example: dict[str, Any]) -> str:
    return _render(tokenizer, example["messages"], prompt=False)


def check_base(name: str, source_task: str) -> None:
    """SFT trains causal LMs only."""
    if source_task != "causal":
        raise ValueError(f"base model {name} is a {source_task} model; SFT needs a causal LM")


def advise(facts: AdviceRequestFacts, base: str | None, parameters: int | None) -> TaskAdvice:
    """All weights for a small model, LoRA above :data:`~modelyard.training.advice.LORA_ABOVE`."""
    from modelyard.training.advice import (
        LORA_ABOVE,
        DatasetSource,
        HyperparameterAdvice,
        length_for,
        schedule_for,
    )

    gpu = facts.compute_type == "gpu"
    large = parameters is not None and parameters > LORA_ABOVE
    batch = (8 if gpu else 4) if not large else (4 if gpu else 1)
    epochs, epochs_why = schedule_for(facts, batch, 3.0)
    max_length, length_why = length_for(facts, 1024 if gpu else 512, 1024 if gpu else 512)
    rate_why = (
        "2e-04 for LoRA adapters (they start at zero and need a higher rate)"
        if large
        else "5e-05 for all the weights of a causal LM (lower than an encoder's)"
    )
    hyper = HyperparameterAdvice(
        epochs=epochs,
        learning_rate=2e-4 if large else 5e-5,
        batch_size=batch,
        max_length=max_length,
        method="lora" if large else "full",
        warmup_ratio=0.03,
        weight_decay=0.0,
        lora_r=16 if large else None,
        reasons={
            "epochs": epochs_why,
            "learning_rate": rate_why,
            "batch_size": f"{batch} chats per step fit the memory of a "
            + ("GPU" if gpu else "CPU")
            + (" for a large model" if large else ""),
            "max_length": length_why,
            "warmup_ratio": "warm up over the first 3% of the steps",
            "weight_decay": "none: fine-tuning a causal LM on chats rarely needs it",
        },
    )
    strategy = (
        f"Supervised fine-tuning of {base}"
        + (" with LoRA adapters (merged when done)" if large else ", all weights")
        + "; train on the assistant turns, watch the evaluation loss and stop when it "
        "rises while the training loss still falls."
    )
    sources = [
        DatasetSource(
            name="databricks/databricks-dolly-15k",
            url="https://huggingface.co/datasets/databricks/databricks-dolly-15k",
            why="15k human-written instruction/response pairs",
        ),
        DatasetSource(
            name="HuggingFaceH4/ultrachat_200k",
            url="https://huggingface.co/datasets/HuggingFaceH4/ultrachat_200k",
            why="multi-turn chats for assistant-style models",
        ),
    ]
    return hyper, strategy, sources


TASK = TrainingTask(
    name="sft",
    label="Chat model (SFT)",
    noun="a chat model",
    kinds={"chat": "chat (SFT)", "instruction": "instruction (SFT)"},
    required_columns=("messages",),
    columns_help=("'messages' (chat), or 'prompt' and 'completion', or 'instruction' and 'output'"),
    prepare=prepare,
    metrics=("eval_loss", "perplexity"),
    advise=advise,
    model_task="chat",
    base_required=(
        "a causal LM (a Hub id such as Qwen/Qwen2.5-0.5B-Instruct, a directory, or a "
        "trained model's name)"
    ),
    check_base=check_base,
    methods=("full", "lora"),
    quantizable=True,
    hub_suggestions=(
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "Hub · 135M parameters, quick on a CPU"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "Hub · 0.5B parameters"),
    ),
    aliases=("text-generation",),
    sample_text=_chat_text,
)
