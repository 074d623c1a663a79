"""What the preference tasks (DPO, ORPO) share: the examples as TRL's conversational
preference rows, the TRL trainer built from them, and the advice.

The trainers apply the tokenizer's chat template (:mod:`.causal` gives one to a base
without), so the tuned model answers in the gateway's chat the way it was taught. With
LoRA the reference model is the base itself (the adapter switched off); the adapter is
merged when done, like SFT's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.training.tasks.causal import load_causal, load_tokenizer
from modelyard.training.tasks.prepared import Prepared, split_examples
from modelyard.training.tasks.spec import TrainingTask

if TYPE_CHECKING:
    from modelyard.training.advice import AdviceRequestFacts
    from modelyard.training.config import TrainingConfig
    from modelyard.training.tasks.spec import TaskAdvice

__all__ = [
    "METRICS",
    "advise_for",
    "check_base_for",
    "conversational",
    "pair_text",
    "preference_task",
    "prepare_with",
]

#: TRL's evaluation metrics → the names a job reports.
RENAMED = {
    "eval_rewards/accuracies": "eval_reward_accuracy",
    "eval_rewards/margins": "eval_reward_margin",
}
#: The metrics a preference job reports (besides ``train_loss``).
METRICS = ("eval_loss", "eval_reward_accuracy", "eval_reward_margin")


def conversational(row: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """One ``prompt``/``chosen``/``rejected`` example as chat messages."""
    return {
        "prompt": [{"role": "user", "content": row["prompt"]}],
        "chosen": [{"role": "assistant", "content": row["chosen"]}],
        "rejected": [{"role": "assistant", "content": row["rejected"]}],
    }


def pair_text(tokenizer: Any, example: dict[str, Any]) -> str:
    """A preference example as the trainer reads it: the prompt and the longer answer."""
    answer = max(example["chosen"], example["rejected"], key=len)
    messages = [
        {"role": "user", "content": example["prompt"]},
        {"role": "assistant", "content": answer},
    ]
    return str(tokenizer.apply_chat_template(messages, tokenize=False))


def _renamed(metrics: dict[str, float]) -> dict[str, float]:
    """TRL's metric names without slashes; the per-row log-probabilities left out."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if name in RENAMED:
            out[RENAMED[name]] = value
        elif "/" not in name:
            out[name] = value
    return out


def _trl(trainer: str) -> tuple[type, Any]:
    """TRL's config and trainer classes for ``dpo`` or ``orpo`` (ORPO is in
    ``trl.experimental`` since TRL 1.0)."""
    if trainer == "dpo":
        from trl.trainer.dpo_config import DPOConfig
        from trl.trainer.dpo_trainer import DPOTrainer

        return DPOConfig, DPOTrainer
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return ORPOConfig, ORPOTrainer


def prepare_with(trainer: str) -> Any:
    """The ``prepare`` of a TRL preference trainer (``dpo`` or ``orpo``)."""

    def prepare(config: TrainingConfig, examples: list[dict[str, Any]], base: Path) -> Prepared:
        from datasets import Dataset  # type: ignore[import-untyped]

        arguments_class, trainer_class = _trl(trainer)

        tokenizer = load_tokenizer(base)
        model, finish, card = load_causal(config, base)
        train, held_out = split_examples(examples, config.eval_fraction, config.seed)
        train_rows = [conversational(row) for row in train]
        eval_rows = [conversational(row) for row in held_out]

        def make_trainer(arguments: Any, callbacks: list[Any]) -> Any:
            return trainer_class(
                model=model,
                args=arguments,
                train_dataset=Dataset.from_list(train_rows),
                eval_dataset=Dataset.from_list(eval_rows),
                processing_class=tokenizer,
                callbacks=callbacks,
            )

        return Prepared(
            model=model,
            tokenizer=tokenizer,
            train_dataset=train_rows,
            eval_dataset=eval_rows,
            finish=finish,
            card=card | {"beta": config.beta},
            derive_metrics=_renamed,
            arguments_class=arguments_class,
            arguments_extra={
                "beta": config.beta,
                "max_length": config.max_length,
                "remove_unused_columns": False,
            },
            make_trainer=make_trainer,
        )

    return prepare


def check_base_for(label: str) -> Any:
    """Refuses a base that is not a causal LM (``label``: DPO, ORPO)."""

    def check_base(name: str, source_task: str) -> None:
        if source_task != "causal":
            raise ValueError(
                f"base model {name} is a {source_task} model; {label} needs a causal LM"
            )

    return check_base


def advise_for(label: str, how: str) -> Any:
    """The advice of a preference task: LoRA, a low learning rate, few epochs."""

    def advise(facts: AdviceRequestFacts, base: str | None, parameters: int | None) -> TaskAdvice:
        from modelyard.training.advice import (
            DatasetSource,
            HyperparameterAdvice,
            length_for,
            schedule_for,
        )

        gpu = facts.compute_type == "gpu"
        batch = 4 if gpu else 1
        epochs, epochs_why = schedule_for(facts, batch, 2.0)
        cap = 1024 if gpu else 512
        max_length, length_why = length_for(facts, cap, cap)
        rate = 5e-6 if label == "DPO" else 8e-6
        hyper = HyperparameterAdvice(
            epochs=epochs,
            learning_rate=rate,
            batch_size=batch,
            max_length=max_length,
            method="lora",
            warmup_ratio=0.1,
            weight_decay=0.0,
            lora_r=16,
            reasons={
                "epochs": epochs_why,
                "learning_rate": f"{rate:.0e}: {label} moves away from the reference "
                "model slowly; a higher rate overfits the preferences",
                "batch_size": f"{batch} pairs per step fit the memory of a "
                + ("GPU" if gpu else "CPU"),
                "max_length": length_why,
                "warmup_ratio": "warm up over the first 10% of the steps",
                "weight_decay": "none",
            },
        )
        strategy = (
            f"{label} of {base} with LoRA adapters (merged when done): {how} Watch the "
            "evaluation's reward accuracy rise above 0.5 and stop when the evaluation loss rises."
        )
        sources = [
            DatasetSource(
                name="trl-lib/ultrafeedback_binarized",
                url="https://huggingface.co/datasets/trl-lib/ultrafeedback_binarized",
                why="prompts with a preferred and a rejected answer, rated by GPT-4",
            ),
            DatasetSource(
                name="Anthropic/hh-rlhf",
                url="https://huggingface.co/datasets/Anthropic/hh-rlhf",
                why="helpful and harmless chats, the chosen and the rejected one",
            ),
        ]
        return hyper, strategy, sources

    return advise


def preference_task(trainer: str, *, how: str, base_required: str) -> TrainingTask:
    """The task of one TRL preference trainer (``"dpo"``, ``"orpo"``): the same data,
    methods and suggestions; ``how`` says what it does, ``base_required`` what it tunes."""
    label = trainer.upper()
    return TrainingTask(
        name=trainer,
        label=f"Preference tuning ({label})",
        noun="a chat model tuned to preferred answers",
        kinds={"preference": f"preference ({label})"},
        required_columns=("prompt", "chosen", "rejected"),
        columns_help="'prompt', 'chosen' (the answer to prefer) and 'rejected' (the one to avoid)",
        prepare=prepare_with(trainer),
        metrics=METRICS,
        advise=advise_for(label, how),
        model_task="chat",
        base_required=base_required,
        check_base=check_base_for(label),
        methods=("full", "lora"),
        default_method="lora",
        quantizable=True,
        hub_suggestions=(
            ("HuggingFaceTB/SmolLM2-135M-Instruct", "Hub · 135M parameters, quick on a CPU"),
            ("Qwen/Qwen2.5-0.5B-Instruct", "Hub · 0.5B parameters"),
        ),
        sample_text=pair_text,
    )
