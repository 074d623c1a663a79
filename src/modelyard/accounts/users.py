"""Creating, finding and authenticating users."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.accounts.errors import EmailTaken, InvalidCredentials, WeakPassword
from modelyard.accounts.web_sessions import end_user_sessions
from modelyard.db.models import User
from modelyard.security.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password

__all__ = [
    "authenticate",
    "change_password",
    "create_user",
    "ensure_first_admin",
    "generate_password",
    "get_user_by_email",
    "normalise_email",
]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def generate_password() -> str:
    """A random password for a generated admin account."""
    return secrets.token_urlsafe(18)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"Password is too short: use at least {MIN_PASSWORD_LENGTH} characters.")


async def get_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == normalise_email(email)))
    return result.scalar_one_or_none()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    is_staff: bool = False,
    full_name: str | None = None,
    trial_ends_at: datetime | None = None,
) -> User:
    """Create and commit a user; raises :class:`EmailTaken` or :class:`WeakPassword`."""
    _check_password(password)
    user = User(
        email=normalise_email(email),
        password_hash=hash_password(password),
        is_staff=is_staff,
        full_name=full_name,
        trial_ends_at=trial_ends_at,
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise EmailTaken(f"An account with the e-mail {user.email} exists already.") from None
    return user


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User:
    """Return the active user with these credentials or raise :class:`InvalidCredentials`."""
    user = await get_user_by_email(session, email=email)
    if not verify_password(password, user.password_hash if user else None) or user is None:
        raise InvalidCredentials("Incorrect e-mail or password.")
    if not user.is_active:
        raise InvalidCredentials("This account is deactivated; ask an administrator.")
    return user


async def change_password(
    session: AsyncSession, *, user_id: int, new_password: str, keep_session_id: int | None
) -> int:
    """Set the user's password and end their other web sessions (all but
    ``keep_session_id``); returns how many ended. Raises :class:`WeakPassword`.

    The caller checks the current password first (``authenticate``, throttled).
    """
    _check_password(new_password)
    user = await session.get(User, user_id)
    if user is None:
        raise InvalidCredentials("This account no longer exists.")
    if verify_password(new_password, user.password_hash):
        raise WeakPassword("The new password is the current one; choose a different password.")
    user.password_hash = hash_password(new_password)
    ended = await end_user_sessions(session, user_id=user_id, keep_id=keep_session_id, commit=False)
    await session.commit()
    return ended


async def ensure_first_admin(
    session: AsyncSession, *, email: str, password: str | None
) -> tuple[User, str | None] | None:
    """Create the first staff account if no staff account exists.

    Returns ``(user, generated_password)`` when an account was created (the password is
    ``None`` when it came from the caller), or ``None`` when staff existed already.
    """
    staff_count = await session.scalar(select(func.count()).where(User.is_staff.is_(True)))
    if staff_count:
        return None
    generated = None if password else generate_password()
    user = await create_user(
        session, email=email, password=password or generated or "", is_staff=True
    )
    return user, generated
