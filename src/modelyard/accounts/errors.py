"""Errors raised by the account functions; the API maps them to HTTP errors."""

from __future__ import annotations

__all__ = ["AccountError", "EmailTaken", "InvalidCredentials", "WeakPassword"]


class AccountError(ValueError):
    """Base of account errors; the message is safe to show to the user."""


class EmailTaken(AccountError):
    """A user with this e-mail address exists already."""


class InvalidCredentials(AccountError):
    """Wrong e-mail or password, or a deactivated account."""


class WeakPassword(AccountError):
    """The password does not meet the minimum length."""
