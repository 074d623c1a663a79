"""The admin's forms: providers (secrets write-only), users and catalog models.

Secrets use password inputs that never render a value; leaving one blank keeps the
stored secret, and a checkbox beside it removes it. Fields appear in the order their
unbound fields are created, hence the module-level definitions below.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from wtforms import (
    BooleanField,
    DateTimeLocalField,
    DecimalField,
    Form,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from modelyard.api.errors import MAX_STORED_INTEGER
from modelyard.providers.kinds import ProviderKind, kind_info

__all__ = [
    "KIND_CHOICES",
    "MAX_PRICE",
    "Bounded",
    "LlmModelForm",
    "ProviderCreateForm",
    "ProviderEditForm",
    "UserForm",
]

KIND_CHOICES = [(kind.value, kind_info(kind).label) for kind in ProviderKind]
_TEXT = {"class": "form-control"}
_CHECK = {"class": "form-check-input"}
_SECRET = {"class": "form-control", "autocomplete": "new-password"}
_KEEP = "Write-only: leave blank to keep the stored value."
#: Below the largest price the catalog stores (``NUMERIC(12, 6)``).
MAX_PRICE = Decimal(1_000_000)


class Bounded:
    """A finite number from ``min`` to ``max``: WTForms' ``NumberRange`` without its
    ``math.isnan`` (which overflows on a number like ``10**400``, a 500), and with the
    database's largest integer as the default ``max``."""

    def __init__(
        self, min: int | Decimal | None = None, max: int | Decimal = MAX_STORED_INTEGER
    ) -> None:
        self.min = min
        self.max = max
        self.field_flags = {"max": max} if min is None else {"min": min, "max": max}

    def __call__(self, form: Form, field: Any) -> None:
        data = field.data
        finite = data is not None and (not isinstance(data, Decimal) or data.is_finite())
        low = self.min is None or (finite and data >= self.min)
        if not (finite and low and data <= self.max):
            lowest = "" if self.min is None else f"from {self.min} "
            raise ValidationError(f"Enter a number {lowest}up to {self.max}.")


def _text(label: str, max_length: int, *, required: bool = False, **kwargs: Any) -> Any:
    first = DataRequired() if required else Optional()
    return StringField(label, [first, Length(max=max_length)], render_kw=_TEXT, **kwargs)


def _secret(label: str) -> Any:
    return PasswordField(label, [Optional(), Length(max=500)], render_kw=_SECRET, description=_KEEP)


_name = _text("Name", 100, required=True)
_kind = SelectField("Kind", choices=KIND_CHOICES, render_kw={"class": "form-select"})
_api_key = _secret("API key")
_clear_api_key = BooleanField("Remove the stored API key", render_kw=_CHECK)
_base_url = _text("Base URL", 500, description="Leave blank for the kind's default URL.")
_base_model = _text("Base model", 200)
_fine_tuned_model_id = _text("Fine-tuned model id", 200)
_organization_id = _secret("Organization id")
_clear_organization_id = BooleanField("Remove the stored organization id", render_kw=_CHECK)
_is_active = BooleanField("Active", default=True, render_kw=_CHECK)
_is_default = BooleanField("Default provider", render_kw=_CHECK)


class ProviderCreateForm(Form):
    name = _name
    kind = _kind
    api_key = _api_key
    base_url = _base_url
    base_model = _base_model
    fine_tuned_model_id = _fine_tuned_model_id
    organization_id = _organization_id
    is_active = _is_active
    is_default = _is_default


class ProviderEditForm(Form):
    """The kind of an existing provider is fixed; secrets can be replaced or removed."""

    name = _name
    api_key = _api_key
    clear_api_key = _clear_api_key
    base_url = _base_url
    base_model = _base_model
    fine_tuned_model_id = _fine_tuned_model_id
    organization_id = _organization_id
    clear_organization_id = _clear_organization_id
    is_active = _is_active
    is_default = _is_default


class UserForm(Form):
    """What staff may change on an account; never the e-mail or the password."""

    is_staff = BooleanField("Staff", render_kw=_CHECK)
    is_active = BooleanField("Active", render_kw=_CHECK)
    has_subscription = BooleanField("Has a subscription", render_kw=_CHECK)
    trial_ends_at = DateTimeLocalField(
        "Trial ends at (UTC)", [Optional()], format="%Y-%m-%dT%H:%M", render_kw=_TEXT
    )


class LlmModelForm(Form):
    provider_kind = SelectField(
        "Provider kind", choices=KIND_CHOICES, render_kw={"class": "form-select"}
    )
    model_id = _text("Model id (at the provider)", 200, required=True)
    display_name = _text("Display name", 200, required=True)
    task = _text("Task", 40, required=True, default="chat")
    input_price_per_million = DecimalField(
        "Input price (USD per million tokens)",
        [InputRequired(), Bounded(min=0, max=MAX_PRICE)],
        places=6,
        default=Decimal(0),
        render_kw=_TEXT,
    )
    output_price_per_million = DecimalField(
        "Output price (USD per million tokens)",
        [InputRequired(), Bounded(min=0, max=MAX_PRICE)],
        places=6,
        default=Decimal(0),
        render_kw=_TEXT,
    )
    context_length = IntegerField(
        "Context length (tokens)", [Optional(), Bounded(min=1)], render_kw=_TEXT
    )
    description = TextAreaField("Description", [Optional()], render_kw=_TEXT)
    is_active = BooleanField("Active", default=True, render_kw=_CHECK)
