"""The ``routing`` object as the API receives it (docs/api.md section 14): its
validation on create, import and PATCH, and its stored form, which
``qrpro.domain.routing`` evaluates on the redirect (that module never imports
this one: pydantic stays off the hot path).

The stored form is the API object normalised (URLs in their ASCII form,
countries in upper case, nothing that is unset), so the code object returns it
as stored; ``to_stored``/``from_stored`` round-trip losslessly, and so do
``to_cell``/``from_cell`` through one JSON cell of ``codes.csv``.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from typing_extensions import TypeAliasType

from qrpro.domain.analytics import Device
from qrpro.domain.bodies import RequestBody
from qrpro.domain.devices import UNKNOWN_COUNTRY, country
from qrpro.domain.routing import UTM_KEYS
from qrpro.domain.urls import MAX_URL, check_url

MAX_RULES, MAX_SPLIT, MAX_COUNTRIES = 20, 10, 50
MAX_SCANS = 10**9
MAX_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_UTM = 100
_REFUSED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # control, format (bidi, zero-width), surrogates, separators


def _country(value: str) -> str:
    code = country(value)
    if code == UNKNOWN_COUNTRY:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code such as DE")
    return code


def _utm_value(value: str) -> str:
    """Any text (spaces too: it is percent-encoded), but no control, bidi-override or zero-width characters."""
    if any(unicodedata.category(c) in _REFUSED for c in value):
        raise ValueError("must not contain control, bidirectional-override or zero-width characters")
    return value


Url = Annotated[str, Field(max_length=MAX_URL, description="absolute http(s) URL, the rules of `url`"),
                AfterValidator(check_url)]
Time = Annotated[int, Field(ge=0, le=MAX_TIME, description="unix seconds")]
Country = Annotated[str, AfterValidator(_country)]
DeviceClass = Device  # one named enumeration with the analytics' device classes
OsClass = TypeAliasType("OsClass", Literal["ios", "android", "other"])
UtmValue = Annotated[str, Field(min_length=1, max_length=MAX_UTM), AfterValidator(_utm_value)]


class RoutingCondition(RequestBody):
    """A rule's conditions: all must hold (``until`` exclusive)."""

    country: Annotated[list[Country], Field(min_length=1, max_length=MAX_COUNTRIES)] | None = None
    device: Annotated[list[DeviceClass], Field(min_length=1, max_length=4)] | None = None
    os: Annotated[list[OsClass], Field(min_length=1, max_length=3)] | None = None
    from_: Time | None = Field(None, alias="from")
    until: Time | None = None

    @field_validator("until")
    @classmethod
    def _after_from(cls, v: int | None, info: ValidationInfo) -> int | None:
        start = info.data.get("from_")
        if v is not None and start is not None and v <= start:
            raise ValueError("must be after `from` (`until` is exclusive)")
        return v

    @model_validator(mode="after")
    def _some(self) -> Self:
        if all(v is None for v in (self.country, self.device, self.os, self.from_, self.until)):
            raise ValueError("a rule needs at least one condition (country, device, os, from, until)")
        return self


class RoutingRule(RequestBody):
    """The first rule whose conditions all hold sends the scan to its ``url``."""

    if_: RoutingCondition = Field(alias="if")
    url: Url


class RoutingSplit(RequestBody):
    url: Url
    weight: Annotated[int, Field(ge=1, le=100, description="percent of the scans that reach the split")]


class RoutingUtm(RequestBody):
    """Appended as ``utm_<key>`` query parameters to the chosen URL."""

    source: UtmValue | None = None
    medium: UtmValue | None = None
    campaign: UtmValue | None = None
    term: UtmValue | None = None
    content: UtmValue | None = None

    @model_validator(mode="after")
    def _some(self) -> Self:
        if all(getattr(self, key) is None for key in UTM_KEYS):
            raise ValueError(f"set at least one of {', '.join(UTM_KEYS)}")
        return self


EXAMPLE: dict[str, Any] = {
    "starts_at": 1767225600, "expires_at": 1769904000, "max_scans": 10000,
    "fallback_url": "https://example.com/campaign-ended",
    "rules": [{"if": {"country": ["DE", "AT", "CH"]}, "url": "https://example.de/"},
              {"if": {"os": ["ios"]}, "url": "https://apps.apple.com/app/id1"},
              {"if": {"os": ["android"]}, "url": "https://play.google.com/store/apps/details?id=x"},
              {"if": {"device": ["desktop"], "from": 1767225600, "until": 1767830400},
               "url": "https://example.com/desk"}],
    "split": [{"url": "https://example.com/a", "weight": 50}, {"url": "https://example.com/b", "weight": 50}],
    "utm": {"source": "qr", "medium": "print", "campaign": "spring"},
}


class Routing(RequestBody):
    """Where each scan of a code goes (docs/api.md section 14)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    starts_at: Time | None = None
    expires_at: Time | None = None
    max_scans: Annotated[int, Field(ge=1, le=MAX_SCANS)] | None = None
    fallback_url: Url | None = None
    rules: Annotated[list[RoutingRule], Field(max_length=MAX_RULES)] | None = None
    split: Annotated[list[RoutingSplit], Field(min_length=2, max_length=MAX_SPLIT)] | None = None
    utm: RoutingUtm | None = None

    @field_validator("expires_at")
    @classmethod
    def _after_start(cls, v: int | None, info: ValidationInfo) -> int | None:
        start = info.data.get("starts_at")
        if v is not None and start is not None and v <= start:
            raise ValueError("must be after starts_at")
        return v

    @field_validator("fallback_url")
    @classmethod
    def _has_an_end(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("expires_at") is None and info.data.get("max_scans") is None:
            raise ValueError("applies only with expires_at or max_scans: set one of them, or drop fallback_url")
        return v

    @field_validator("rules")
    @classmethod
    def _no_empty_rules(cls, v: list[RoutingRule] | None) -> list[RoutingRule] | None:
        return v or None  # [] means no rules: stored as absent

    @field_validator("split")
    @classmethod
    def _weights(cls, v: list[RoutingSplit] | None) -> list[RoutingSplit] | None:
        total = sum(entry.weight for entry in v or ())
        if v is not None and total != 100:
            raise ValueError(f"the weights must sum to 100 (they sum to {total})")
        return v

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.to_stored():
            raise ValueError("set at least one of starts_at, expires_at, max_scans, rules, split, utm "
                             "(or send null to clear routing)")
        return self

    def to_stored(self) -> dict[str, Any]:
        """The stored form: plain JSON types, unset keys left out."""
        return self.model_dump(by_alias=True, exclude_none=True)

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> Routing:
        return cls.model_validate(stored)

    def to_cell(self) -> str:
        """One compact JSON cell (``codes.csv``)."""
        return json.dumps(self.to_stored(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_cell(cls, cell: str) -> Routing | None:
        """A ``codes.csv`` cell back (empty: no routing); ValueError or ValidationError if it is not one."""
        data = json_text(cell)
        return None if data is None else cls.model_validate(data)


def json_text(value: Any) -> Any:
    """A ``routing`` value as a request or a ``codes.csv`` cell holds it: a JSON object, or its JSON text
    (an empty cell: no routing). Anything else is left for the model to refuse."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        return json.loads(value)
    except ValueError as err:
        raise ValueError("must be a JSON object (or null to clear routing)") from err


# The field for the code models: `routing: RoutingField = None` (null clears it on PATCH).
RoutingField = Annotated[Routing | None, BeforeValidator(json_text)]
