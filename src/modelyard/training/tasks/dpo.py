"""Direct Preference Optimization (TRL's ``DPOTrainer``) of a causal LM on
``prompt``/``chosen``/``rejected`` examples; LoRA by default, ``beta`` from the config."""

from __future__ import annotations

from modelyard.training.tasks.preference import preference_task

__all__ = ["TASK"]

TASK = preference_task(
    "dpo",
    how="the chosen answers made likelier than the rejected ones, against the base.",
    base_required=(
        "a causal LM, ideally one tuned to chat already (a Hub id such as "
        "Qwen/Qwen2.5-0.5B-Instruct, a directory, or a trained model's name)"
    ),
)
