"""The optional keys step of starting a job: a Hugging Face token and a Groq key.

The keys are checked with the same messages as a user's profile keys, used for this job
only (held in memory as :class:`~modelyard.training.config.JobSecrets`), and stored —
encrypted, with the user's own keys — only when the user asks to remember them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import User, UserProviderKey
from modelyard.errors import BadRequestError
from modelyard.providers.key_format import InvalidKeyFormat, check_key_format
from modelyard.providers.user_keys import set_user_key
from modelyard.training.config import JobSecrets

__all__ = [
    "JobKeys",
    "given_secrets",
    "job_secrets",
    "remember_keys",
    "request_secrets",
    "saved_key",
    "valid_key",
]


class JobKeys(BaseModel):
    """The keys step: skip it (omit it) to train on the CPU and keep the model local."""

    model_config = ConfigDict(extra="forbid")

    #: Pushes the trained model to the Hub (and reads gated base models).
    hf_token: SecretStr | None = None
    #: Asks Groq for training advice.
    groq_api_key: SecretStr | None = None
    #: Store the keys given here, encrypted, in the user's profile.
    remember: bool = False
    #: Use the keys saved in the profile for the ones not given here.
    use_saved: bool = False


def valid_key(provider: str, value: SecretStr | None, *, param: str) -> str | None:
    """The stripped key, ``None`` when not given; 400 with the format message when wrong."""
    if value is None or not value.get_secret_value().strip():
        return None
    try:
        return check_key_format(provider, value.get_secret_value())
    except InvalidKeyFormat as exc:
        raise BadRequestError(str(exc), param=param, code="invalid_key_format") from None


async def saved_key(session: AsyncSession, user: User, provider: str) -> str | None:
    """``user``'s stored key for ``provider`` (decrypted), if any."""
    key: str | None = await session.scalar(
        select(UserProviderKey.api_key).where(
            UserProviderKey.user_id == user.id, UserProviderKey.provider == provider
        )
    )
    return key


def given_secrets(keys: JobKeys | None, param_prefix: str = "keys.") -> JobSecrets:
    """The keys typed in the keys step, checked (400 with the format message when wrong;
    its ``param`` is the key's name after ``param_prefix``)."""
    if keys is None:
        return JobSecrets()
    return JobSecrets(
        hf_token=valid_key("huggingface", keys.hf_token, param=f"{param_prefix}hf_token"),
        groq_api_key=valid_key("groq", keys.groq_api_key, param=f"{param_prefix}groq_api_key"),
    )


async def job_secrets(
    session: AsyncSession, user: User, keys: JobKeys | None, param_prefix: str = "keys."
) -> JobSecrets:
    """The job's in-memory secrets: the keys given, then (``use_saved``) the saved ones."""
    given = given_secrets(keys, param_prefix)
    if keys is None or not keys.use_saved:
        return given
    return JobSecrets(
        hf_token=given.hf_token or await saved_key(session, user, "huggingface"),
        groq_api_key=given.groq_api_key or await saved_key(session, user, "groq"),
    )


async def request_secrets(
    session: AsyncSession, user: User, keys: JobKeys | None, flat: JobKeys
) -> JobSecrets:
    """A job request's secrets: ``flat``, the keys beside the config (the first front
    end's shape; a malformed one is a 400 naming ``hf_token`` or ``groq_api_key``), then
    the keys step's."""
    beside = given_secrets(flat, param_prefix="")
    step = await job_secrets(session, user, keys)
    return JobSecrets(
        hf_token=beside.hf_token or step.hf_token,
        groq_api_key=beside.groq_api_key or step.groq_api_key,
    )


async def remember_keys(session: AsyncSession, user: User, keys: JobKeys | None) -> None:
    """Store the keys typed in the keys step in ``user``'s profile when asked to."""
    if keys is None or not keys.remember:
        return
    given = given_secrets(keys)
    for provider, key in (("huggingface", given.hf_token), ("groq", given.groq_api_key)):
        if key is not None:
            await set_user_key(session, user=user, provider=provider, api_key=key)
