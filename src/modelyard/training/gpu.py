"""The GPU options of a job: number format, gradient checkpointing and QLoRA (4-bit).

:func:`check_gpu_options` refuses, when the job is created, options this job cannot have
(a 400 saying what to change); :func:`precision_flags` and :func:`require_4bit` are used
by the worker on the machine that trains. ``precision: auto`` trains in bf16 on a GPU that
has it (Ampere and newer), fp16 on an older one, fp32 on a CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.errors import BadRequestError

if TYPE_CHECKING:
    from modelyard.training.config import TrainingConfig
    from modelyard.training.tasks.spec import TrainingTask

__all__ = [
    "check_gpu_options",
    "compute_dtype",
    "master_dtype",
    "precision_flags",
    "require_4bit",
]


def check_gpu_options(config: TrainingConfig, task: TrainingTask) -> None:
    """400 for GPU options on a CPU job, or QLoRA where it cannot run."""
    if config.compute_type == "cpu" and config.precision in ("bf16", "fp16"):
        raise BadRequestError(
            f"precision {config.precision} is for GPU jobs: set compute_type gpu, or precision "
            "auto (a CPU job trains in fp32).",
            param="precision",
            code="gpu_option_on_cpu",
        )
    if not config.load_in_4bit:
        return
    if config.compute_type == "cpu":
        raise BadRequestError(
            "load_in_4bit (QLoRA) needs compute_type gpu: the 4-bit kernels (bitsandbytes) "
            "run on CUDA GPUs only. Train on the CPU without load_in_4bit.",
            param="load_in_4bit",
            code="gpu_option_on_cpu",
        )
    if not task.quantizable:
        raise BadRequestError(
            f"load_in_4bit (QLoRA) trains causal LMs (sft, dpo, orpo), not {task.name}.",
            param="load_in_4bit",
        )
    if config.method != "lora":
        raise BadRequestError(
            "load_in_4bit (QLoRA) trains LoRA adapters on the frozen 4-bit model: set method lora.",
            param="method",
        )


def _bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def precision_flags(config: TrainingConfig, device: str) -> dict[str, bool]:
    """The ``bf16``/``fp16`` training arguments for ``config`` on ``device``."""
    if device != "cuda" or config.precision == "fp32":
        return {"bf16": False, "fp16": False}
    bf16 = config.precision == "bf16" or (config.precision == "auto" and _bf16_supported())
    return {"bf16": bf16, "fp16": not bf16}


def master_dtype() -> Any:
    """The number format a model is loaded in to be trained: fp32, whatever its checkpoint
    holds. transformers 5 loads a checkpoint's own format by default, and weights kept in
    bf16 or fp16 lose the small updates of a low learning rate (fp16 ones also fail fp16
    mixed precision's gradient unscaling); a GPU job computes in bf16/fp16 from these
    (:func:`precision_flags`)."""
    import torch

    return torch.float32


def compute_dtype(config: TrainingConfig, device: str) -> Any:
    """The torch dtype the model computes in (the 4-bit layers' compute type)."""
    import torch

    flags = precision_flags(config, device)
    return torch.bfloat16 if flags["bf16"] else torch.float16 if flags["fp16"] else torch.float32


def require_4bit(config: TrainingConfig, device: str) -> Any:
    """The ``BitsAndBytesConfig`` for QLoRA; a clear error where there is no GPU or no
    bitsandbytes."""
    if device != "cuda":
        raise RuntimeError("load_in_4bit (QLoRA): no CUDA GPU is visible to the worker")
    try:
        import bitsandbytes  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "load_in_4bit (QLoRA) needs bitsandbytes on the GPU worker: pip install "
            "'modelyard[gpu]' (or pip install bitsandbytes)"
        ) from None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype(config, device),
    )
