"""Tiny random-initialised models with an offline tokenizer, saved like Hub checkpoints.

Used by the local-model tests and by ``bench/local.py``; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

__all__ = ["CHAT_TEMPLATE", "build_causal", "build_classifier", "build_seq2seq", "build_tokenizer"]

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, how are you today?",
    "a tiny model for tests writes random text",
    "local models run in the same process as the gateway",
    "stop sequences end the answer early",
]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer(
    vocab_size: int = 400, *, chat_template: bool = True, corpus: list[str] | None = None
) -> Any:
    """A byte-level BPE trained on a few sentences (or ``corpus``): any text encodes,
    decoding is exact."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus or SENTENCES * 4, trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", bos_token="<s>"
    )
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def build_causal(
    directory: Path,
    *,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    eos: bool = False,
    chat_template: bool = True,
    seed: int = 0,
    initializer_range: float = 0.5,
    corpus: list[str] | None = None,
    vocab_size: int = 400,
) -> Path:
    """A random Llama. Its large initialiser range makes the logits peaked, so greedy
    decoding is stable under the rounding differences of batched runs. Without ``eos``
    the model never ends on its own (every answer runs to ``max_tokens``). ``corpus`` and
    ``vocab_size`` shape its tokenizer (a bigger model to train: ``bench/gpu_training.py``)."""
    tokenizer = build_tokenizer(vocab_size, chat_template=chat_template, corpus=corpus)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads // 2,
        max_position_embeddings=1024,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=1 if eos else None,
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_classifier(directory: Path, *, seed: int = 0) -> Path:
    """A random two-layer BERT sequence classifier with the labels negative and positive."""
    tokenizer = build_tokenizer(chat_template=False)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        pad_token_id=0,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_seq2seq(directory: Path, *, seed: int = 0) -> Path:
    """A random T5 (flan-t5 shape: relative positions, pad as decoder start)."""
    tokenizer = build_tokenizer(chat_template=False)
    config = T5Config(  # type: ignore[call-arg]
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        initializer_factor=2.0,
    )
    torch.manual_seed(seed)
    T5ForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def write_config(directory: Path, config: dict[str, Any]) -> Path:
    """A directory holding only ``config.json`` (for the refusal tests)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory
