"""Direct Preference Optimization (TRL's ``DPOTrainer``) of a causal LM on
``prompt``/``chosen``/``rejected`` examples; LoRA by default, ``beta`` from the config."""

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
    name="dpo",
    label="Preference tuning (DPO)",
    noun="a chat model tuned to preferred answers",
    kinds={"preference": "preference (DPO)"},
    required_columns=("prompt", "chosen", "rejected"),
    columns_help="'prompt', 'chosen' (the answer to prefer) and 'rejected' (the one to avoid)",
    prepare=prepare_with("dpo"),
    metrics=METRICS,
    advise=advise_for(
        "DPO", "the chosen answers made likelier than the rejected ones, against the base."
    ),
    model_task="chat",
    base_required=(
        "a causal LM, ideally one tuned to chat already (a Hub id such as "
        "Qwen/Qwen2.5-0.5B-Instruct, a directory, or a trained model's name)"
    ),
    check_base=check_base_for("DPO"),
    methods=("full", "lora"),
    default_method="lora",
    quantizable=True,
    hub_suggestions=(
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "Hub · 135M parameters, quick on a CPU"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "Hub · 0.5B parameters"),
    ),
    sample_text=pair_text,
)
