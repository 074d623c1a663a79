"""Which e-mail addresses may register: valid syntax, no deliverability lookup, and the
special-use domains (RFC 6761: ``.local``, ``.test``, ``localhost``, …) a setting accepts.

``email_validator`` refuses every special-use domain, yet a self-hosted server's accounts
often live on one (the default admin is ``admin@modelyard.local``). An accepted special
name is checked as if it were ``example.com``, so the rest of the syntax rules still hold.
"""

from __future__ import annotations

from collections.abc import Collection

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

__all__ = ["EVERY_SPECIAL_USE_DOMAIN", "InvalidEmail", "check_email"]

#: Every special-use name ``email_validator`` knows: to check the syntax alone.
EVERY_SPECIAL_USE_DOMAIN = tuple(SPECIAL_USE_DOMAIN_NAMES)

#: What an accepted special name stands in for while the syntax is checked.
_STAND_IN = "example.com"


class InvalidEmail(ValueError):
    """An address that may not register; the message says why and what to do."""


def _accepted_suffix(domain: str, accepted: Collection[str]) -> str | None:
    for name in accepted:
        name = name.strip(".").lower()
        if name and (domain == name or domain.endswith("." + name)):
            return name
    return None


def check_email(address: str, *, special_use_domains: Collection[str]) -> str:
    """``address`` normalised (domain lower-cased), or :class:`InvalidEmail`.

    ``special_use_domains``: the special-use names (and their subdomains) accepted.
    """
    local, at, domain = address.strip().rpartition("@")
    suffix = _accepted_suffix(domain.lower(), special_use_domains) if at else None
    checked = address.strip()
    if suffix is not None:
        checked = f"{local}@{domain[: len(domain) - len(suffix)]}{_STAND_IN}"
    try:
        valid = validate_email(checked, check_deliverability=False)
    except EmailNotValidError as exc:
        hint = ""
        if "special-use" in str(exc):
            hint = (
                " This server accepts these special-use domains: "
                f"{', '.join(sorted(special_use_domains)) or 'none'}."
            )
        raise InvalidEmail(f"{exc}{hint}") from None
    if suffix is None:
        return valid.normalized
    return valid.normalized[: -len(_STAND_IN)] + suffix
