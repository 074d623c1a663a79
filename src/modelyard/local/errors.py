"""The three ways a local model can be refused, each with what to do about it."""

from __future__ import annotations

from modelyard.errors import BadRequestError, NotFoundError, PermissionDeniedError

__all__ = ["ModelNotFoundError", "UnauthorizedModelError", "UnsupportedModelError"]


class UnsupportedModelError(BadRequestError):
    """The model exists, but this runtime cannot run its architecture (400)."""

    def __init__(self, model: str, model_type: str, supported: str) -> None:
        super().__init__(
            f"Unsupported model type: {model_type} ({model}) — this runtime supports: "
            f"{supported}; authentication will not fix this.",
            param="model",
            code="unsupported_model_type",
        )


class UnauthorizedModelError(PermissionDeniedError):
    """The model is private or gated and the token is missing or lacks access (401/403)."""

    def __init__(self, model: str, *, status: int, has_token: bool) -> None:
        advice = (
            "the Hugging Face token in use has no access: accept the model's terms on its "
            "Hub page or use a token that has access"
            if has_token
            else "set HF_TOKEN (or HUGGINGFACE_TOKEN, or your Hugging Face key in your "
            "profile) to a token with access"
        )
        super().__init__(
            f"Unauthorized: {model} is private or gated; {advice}.",
            param="model",
            code="model_unauthorized",
        )
        self.status_code = status  # type: ignore[misc]


class ModelNotFoundError(NotFoundError):
    """No such model the caller may use: trained, folder or Hub repository (404; the same
    answer whether it is missing or someone else's)."""

    def __init__(self, model: str, detail: str = "") -> None:
        super().__init__(
            f"Model not found: {model}{detail} — check the name (a trained model of yours or "
            "one shared with you, a Hub id such as Qwen/Qwen2.5-0.5B-Instruct, or for staff a "
            "model folder under MODELYARD_LOCAL_MODEL_DIRS).",
            param="model",
            code="model_not_found",
        )
