"""The provider kinds modelyard speaks to, and what each needs.

Each kind declares its default base URL, the environment variables its system keys come
from (``NAME``, then ``NAME_2``, ``NAME_3``, …), the shape its keys have, and where a user
creates one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["KIND_INFO", "KindInfo", "ProviderKind", "kind_info"]


class ProviderKind(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GOOGLE = "google"
    GROQ = "groq"
    HUGGINGFACE = "huggingface"
    OPENAI_COMPATIBLE = "openai_compatible"
    CUSTOM = "custom"
    LOCAL = "local"


@dataclass(frozen=True)
class KindInfo:
    kind: ProviderKind
    label: str
    default_base_url: str | None
    #: Environment variables of system keys, most conventional first.
    env_vars: tuple[str, ...] = ()
    key_prefix: str | None = None
    key_min_length: int = 8
    #: Where a user creates a key.
    key_url: str | None = None
    #: Whether this kind can be used without any key (local models, some self-hosted URLs).
    key_optional: bool = False
    #: Whether a user can store a key of their own for this kind.
    user_keys: bool = True


KIND_INFO: dict[ProviderKind, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(
            ProviderKind.OPENAI,
            "OpenAI",
            "https://api.openai.com/v1",
            env_vars=("OPENAI_API_KEY",),
            key_prefix="sk-",
            key_min_length=20,
            key_url="https://platform.openai.com/api-keys",
        ),
        KindInfo(
            ProviderKind.ANTHROPIC,
            "Anthropic",
            "https://api.anthropic.com",
            env_vars=("ANTHROPIC_API_KEY",),
            key_prefix="sk-ant-",
            key_min_length=20,
            key_url="https://console.anthropic.com/settings/keys",
        ),
        KindInfo(
            ProviderKind.GOOGLE,
            "Google Gemini",
            "https://generativelanguage.googleapis.com",
            env_vars=("GOOGLE_API_KEY", "GEMINI_API_KEY"),
            key_min_length=20,
            key_url="https://aistudio.google.com/app/apikey",
        ),
        KindInfo(
            ProviderKind.GROQ,
            "Groq",
            "https://api.groq.com/openai/v1",
            env_vars=("GROQ_API_KEY",),
            key_prefix="gsk_",
            key_min_length=10,
            key_url="https://console.groq.com/keys",
        ),
        KindInfo(
            ProviderKind.HUGGINGFACE,
            "Hugging Face",
            "https://router.huggingface.co/v1",
            env_vars=(
                "HF_TOKEN",
                "HUGGINGFACE_TOKEN",
                "HF_API_KEY",
                "HUGGINGFACE_API_KEY",
                "VITE_HUGGINGFACE_API_KEY",
                "VITE_HF_API_KEY",
            ),
            key_prefix="hf_",
            key_min_length=20,
            key_url="https://huggingface.co/settings/tokens",
        ),
        KindInfo(
            ProviderKind.OPENAI_COMPATIBLE,
            "OpenAI-compatible URL",
            None,
            key_optional=True,
            user_keys=False,
        ),
        KindInfo(ProviderKind.CUSTOM, "Custom REST provider", None, user_keys=False),
        KindInfo(
            ProviderKind.LOCAL,
            "Local models",
            None,
            key_optional=True,
            user_keys=False,
        ),
    )
}


def kind_info(kind: ProviderKind | str) -> KindInfo:
    """The facts about ``kind`` (a :class:`ProviderKind` or its value)."""
    return KIND_INFO[ProviderKind(kind)]
