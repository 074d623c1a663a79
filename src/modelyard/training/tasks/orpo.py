"""Odds Ratio Preference Optimization (TRL's ``ORPOTrainer``, in ``trl.experimental``):
SFT on the chosen answers and a preference penalty in one pass, no reference model;
``prompt``/``chosen``/``rejected`` examples, LoRA by default, ``beta`` is ORPO's lambda."""

from __future__ import annotations

from modelyard.training.tasks.preference import preference_task

__all__ = ["TASK"]

TASK = preference_task(
    "orpo",
    how="learn the chosen answers and push the rejected ones away in one pass.",
    base_required=(
        "a causal LM (a Hub id such as Qwen/Qwen2.5-0.5B-Instruct, a directory, or a "
        "trained model's name)"
    ),
)
