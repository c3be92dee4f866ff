"""Pure rules of the foundation: keys, bearer parsing, cursors, error paths, plans."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qrpro.api.errors import field_path
from qrpro.domain import apikeys, cursor
from qrpro.domain.clock import next_midnight
from qrpro.domain.errors import RateLimited, ValidationFailed
from qrpro.domain.plans import PLANS


def test_token_has_prefix_and_at_least_160_bits() -> None:
    token = apikeys.new_token()
    assert token.startswith("abnd_qrpro_")
    secret = token.removeprefix("abnd_qrpro_")
    # URL-safe base64: 6 bits a character.
    assert len(secret) * 6 >= 160 and math.log2(64) * len(secret) >= 256
    assert apikeys.well_formed(token)
    assert len({apikeys.new_token() for _ in range(1000)}) == 1000


def test_only_the_sha256_is_derived_from_a_token() -> None:
    digest = apikeys.token_hash("abnd_qrpro_x")
    assert len(digest) == 64 and "abnd" not in digest


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("Bearer  abc ", "abc"),
    (None, None), ("", None), ("Basic abc", None), ("Bearer", None), ("Bearer a b", None), ("abc", None),
])
def test_bearer_parsing(header: str | None, token: str | None) -> None:
    assert apikeys.bearer_token(header) == token


def test_field_paths_follow_the_contract() -> None:
    assert field_path(("body", "url")) == "url"
    assert field_path(("body", "codes", 3, "url")) == "codes[3].url"
    assert field_path(("query", "limit")) == "limit"
    assert field_path(("body",)) == "body"
    assert field_path(("header", "idempotency-key")) == "Idempotency-Key"  # Powertools lowercases header names


def test_rate_limited_carries_retry_after_in_seconds() -> None:
    now = 1_795_700_000
    err = RateLimited(retry_at=next_midnight(now), now=now, limit=1000)
    assert err.body() == {"error": "rate_limited", "window": "day", "retry_at": next_midnight(now),
                          "message": RateLimited.default_message}
    assert err.retry_after == next_midnight(now) - now
    assert next_midnight(now) % 86_400 == 0 and 0 < next_midnight(now) - now <= 86_400


def test_plans_match_the_contract_table() -> None:
    assert {n: (p.api, p.requests_per_day, p.codes, p.scans_per_month, p.retention_days, p.hourly_analytics)
            for n, p in PLANS.items()} == {
        "solo": (False, 0, 25, 100_000, 365, False),
        "business": (True, 1_000, 500, 1_000_000, 730, False),
        "team": (True, 10_000, 2_500, 10_000_000, 1_095, True),
        "agency": (True, 50_000, 10_000, 30_000_000, 1_095, True),
    }


def test_cursor_round_trip_and_scope_binding() -> None:
    c = cursor.encode({"pk": "USER#a", "sk": "CODE#1"}, "USER#a", "s3cret")
    assert cursor.decode(c, "USER#a", "s3cret") == {"pk": "USER#a", "sk": "CODE#1"}
    with pytest.raises(ValidationFailed):
        cursor.decode(c, "USER#b", "s3cret")  # another tenant's cursor
    with pytest.raises(ValidationFailed):
        cursor.decode(c, "USER#a", "other-secret")


@given(st.text(max_size=300))
def test_any_forged_cursor_is_a_validation_error(text: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        cursor.decode(text, "USER#a", "s3cret")
    assert info.value.body()["field"] == "cursor"


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=40))
def test_a_tampered_cursor_is_rejected(noise: bytes, where: int) -> None:
    c = cursor.encode({"pk": "USER#a", "sk": "CODE#1", "lsi1sk": "x"}, "USER#a", "s3cret")
    i = where % len(c)
    forged = c[:i] + chr((ord(c[i]) + 1 + noise[0] % 5) % 128) + c[i + 1:]
    if forged == c:
        return
    with pytest.raises(ValidationFailed):
        cursor.decode(forged, "USER#a", "s3cret")


@given(st.randoms(use_true_random=False))
def test_shortcodes_are_7_base58_characters_whatever_the_draw(rnd: object) -> None:
    from qrpro.domain.codes import BASE58, SHORTCODE_RE, new_shortcode

    code = new_shortcode(rnd.choice)  # type: ignore[attr-defined]
    assert SHORTCODE_RE.match(code) and set(code) <= set(BASE58)
    assert not set(code) & set("0OIl")  # the Base58 alphabet leaves out look-alikes


def test_every_error_carries_a_message_for_people() -> None:
    """docs/api.md section 5: `message` on every error body, the class's default unless the raise site says more."""
    import inspect

    from qrpro.domain import errors

    for cls in vars(errors).values():
        if inspect.isclass(cls) and issubclass(cls, errors.DomainError) and cls.__init__ is errors.DomainError.__init__:
            body = cls().body()
            assert body["message"] == cls.default_message and body["message"].endswith("."), cls
            assert cls.default_message != errors.DomainError.default_message or cls is errors.DomainError, cls
    assert errors.NotFound("user not found").body() == {"error": "not_found", "message": "user not found"}
    assert errors.ValidationFailed("url", "must be https").body() == {
        "error": "validation_error", "field": "url", "message": "must be https"}


def test_every_domain_error_has_its_http_status_in_the_api_table() -> None:
    """Domain errors know nothing of HTTP; qrpro.api.errors.STATUS is the one table (docs/api.md section 5)."""
    import inspect

    from qrpro.api.errors import STATUS, headers_of, status_of
    from qrpro.domain import errors

    raised = [cls for cls in vars(errors).values()
              if inspect.isclass(cls) and issubclass(cls, errors.DomainError) and cls is not errors.DomainError]
    assert sorted(c.__name__ for c in raised) == sorted(c.__name__ for c in STATUS)
    assert not any(hasattr(cls, "status") for cls in raised)
    assert status_of(errors.DomainError()) == 500
    busy = errors.ServiceUnavailable()
    assert (status_of(busy), headers_of(busy)) == (503, {"Retry-After": "1"})
    limited = errors.RateLimited(retry_at=1_000, now=940, limit=5_000)
    assert (status_of(limited), headers_of(limited)) == (429, {
        "Retry-After": "60", "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1000"})


def test_the_gateway_responses_carry_a_message() -> None:
    from infra.constructs.api import GATEWAY_RESPONSES
    from qrpro.domain.errors import NotSignedIn
    from qrpro_cli.rest_api import RestApi
    from qrpro_cli.template import Template

    bodies = [json.loads(t.replace("$context.error.messageString", '"x"')) for _, _, t in GATEWAY_RESPONSES]
    assert all(body["message"] for body in bodies)
    assert {"error": "not_signed_in", "message": NotSignedIn.default_message} in bodies
    # The local gateway answers with the synthesized template's responses.
    local = RestApi(None, [], {}, None, Template.load().gateway_responses(), "prod")  # type: ignore[arg-type]
    for kind in ("UNAUTHORIZED", "ACCESS_DENIED", "REQUEST_TOO_LARGE", "MISSING_AUTHENTICATION_TOKEN", "DEFAULT_5XX",
                 "AUTHORIZER_CONFIGURATION_ERROR", "INTEGRATION_TIMEOUT"):
        _, _, body = local.gateway_response(kind, "r1")
        assert json.loads(body)["message"], kind
    assert json.loads(local.gateway_response("DEFAULT_5XX", "r1")[2])["request_id"] == "r1"


def test_the_status_constants_are_the_api_s_status_type() -> None:
    """One list: the redirect's import-light constants and the OpenAPI's named CodeStatus agree."""
    from typing import get_args

    from qrpro.domain.codes import CodeStatus
    from qrpro.domain.statuses import Status

    assert list(get_args(CodeStatus.__value__)) == [s.value for s in Status]
