"""What the causal-LM tasks (SFT, DPO, ORPO) share: the tokenizer with a chat template,
the base model (in 4 bits for QLoRA), the LoRA wrapping and the merge when done.

A base tokenizer without a chat template gets :data:`FALLBACK_TEMPLATE`, saved with the
model so that the trained model chats the way it was taught.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.training.config import TrainingConfig

__all__ = ["FALLBACK_TEMPLATE", "load_causal", "load_tokenizer"]

FALLBACK_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def load_tokenizer(base: Path) -> Any:
    """The base's tokenizer, with a pad token and a chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = FALLBACK_TEMPLATE
    return tokenizer


def _unchanged(model: Any) -> Any:
    return model


def _merge_lora(model: Any) -> Any:
    """The base model with the trained adapter folded into its weights."""
    return model.merge_and_unload()


def _merge_into(base: Path, dtype: Any) -> Callable[[Any], Any]:
    """QLoRA: the adapter merged into the base loaded again unquantised, in ``dtype``
    (4-bit weights cannot take the merge)."""

    def merge(model: Any) -> Any:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        with tempfile.TemporaryDirectory(prefix="modelyard-adapter-") as adapter:
            model.save_pretrained(adapter)
            full = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
            return PeftModel.from_pretrained(full, adapter).merge_and_unload()

    return merge


def load_causal(
    config: TrainingConfig, base: Path
) -> tuple[Any, Callable[[Any], Any], dict[str, Any]]:
    """The model to train (LoRA-wrapped for ``method: lora``, 4-bit for QLoRA), how to
    finish it, and its lines for the model card."""
    from transformers import AutoModelForCausalLM

    from modelyard.training.gpu import compute_dtype, master_dtype, require_4bit

    device = "cuda" if config.compute_type == "gpu" else "cpu"
    card: dict[str, Any] = {"method": config.method}
    finish: Callable[[Any], Any] = _unchanged
    if config.load_in_4bit:
        quantization = require_4bit(config, device)
        model: Any = AutoModelForCausalLM.from_pretrained(
            base, quantization_config=quantization, device_map={"": 0}
        )
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model, use_gradient_checkpointing=config.gradient_checkpointing
        )
        card["quantization"] = "4-bit NF4 (QLoRA)"
    else:
        # LoRA: the frozen base may stay in the compute type (PEFT keeps the adapters,
        # the weights trained, in fp32); full training updates every weight.
        dtype = compute_dtype(config, device) if config.method == "lora" else master_dtype()
        model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = config.lora
        model = get_peft_model(
            model,
            LoraConfig(
                task_type="CAUSAL_LM",
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=lora.target_modules,
            ),
        )
        card["lora"] = lora.model_dump()
        finish = (
            _merge_into(base, compute_dtype(config, device)) if config.load_in_4bit else _merge_lora
        )
    return model, finish, card
