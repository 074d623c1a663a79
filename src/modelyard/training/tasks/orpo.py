"""Odds Ratio Preference Optimization (TRL's ``ORPOTrainer``, in ``trl.experimental``):
SFT on the chosen answers and a preference penalty in one pass, no reference model;
``prompt``/``chosen``/``rejected`` examples, LoRA by default, ``beta`` is ORPO's lambda."""

from __future__ import annotations

from modelyard.training.tasks.preference import (
    METRICS,
    advise_for,
    check_base_for,
    pair_text,
    prepare_with,
)
from modelyard.training.tasks.spec import TrainingTask

__all__ = ["TASK"]

TASK = TrainingTask(
    name="orpo",
    label="Preference tuning (ORPO)",
    noun="a chat model tuned to preferred answers",
    kinds={"preference": "preference (ORPO)"},
    required_columns=("prompt", "chosen", "rejected"),
    columns_help="'prompt', 'chosen' (the answer to prefer) and 'rejected' (the one to avoid)",
    prepare=prepare_with("orpo"),
    metrics=METRICS,
    advise=advise_for(
        "ORPO", "learn the chosen answers and push the rejected ones away in one pass."
    ),
    model_task="chat",
    base_required=(
        "a causal LM (a Hub id such as Qwen/Qwen2.5-0.5B-Instruct, a directory, or a "
        "trained model's name)"
    ),
    check_base=check_base_for("ORPO"),
    methods=("full", "lora"),
    default_method="lora",
    quantizable=True,
    hub_suggestions=(
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "Hub · 135M parameters, quick on a CPU"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "Hub · 0.5B parameters"),
    ),
    sample_text=pair_text,
)
