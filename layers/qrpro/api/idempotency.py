"""`Idempotency-Key` for mutating POSTs, on Powertools' idempotency utility.

The key is scoped to the caller's user, the scope it acts in (personal or a
team), the method and the canonical path (no trailing slash), so two clients,
two scopes or two spellings of one resource cannot collide or split; the
body's SHA-256 is the payload fingerprint, so the same key with another body
is ``409 idempotency_conflict``. Only successful responses are stored (24 h):
an error leaves nothing behind and can be retried.

A replay returns the first response byte for byte: the body is serialised
once and stored as that text, and the first answer and every replay are both
built from it (same key order, same values, same headers but the per-request
``X-RateLimit-*``/``X-Request-Id``).
A stored body holding a webhook's ``secret`` is sealed as a whole, like the
webhook's own copy (``qrpro.domain.sealing``), so the idempotency table holds
no secret in the clear either.

The header is a route parameter (:data:`Key`), so Powertools reads it (any
spelling: header names are case-insensitive), validates it (a bad one is the
contract's ``400 validation_error`` on ``Idempotency-Key``) and documents it.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header
from pydantic import BeforeValidator, StringConstraints

from qrpro.api.context import caller
from qrpro.api.errors import json_response
from qrpro.config import settings
from qrpro.data.aws import client
from qrpro.data.secrets import webhook_key
from qrpro.domain import sealing
from qrpro.domain.errors import IdempotencyConflict
from qrpro.domain.scope import Caller

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

HEADER = "Idempotency-Key"
MAX_KEY = 255
SEALED_FIELD = "secret"  # POST /api/webhooks answers with the signing secret
TTL_SECONDS = 24 * 3600
Work = Callable[[], tuple[int, dict[str, Any]]]
_work: contextvars.ContextVar[Work] = contextvars.ContextVar("idempotent_work")


def _check(value: Any) -> Any:
    """The contract's message for a key out of bounds (pydantic's own would be worded differently)."""
    if isinstance(value, str) and not 1 <= len(value) <= MAX_KEY:
        raise ValueError(f"must be 1 to {MAX_KEY} characters")
    return value


# The optional header of the mutating POSTs, declared on each route: `key: idempotency.Key = None`.
Key = Annotated[
    Annotated[str, BeforeValidator(_check), StringConstraints(min_length=1, max_length=MAX_KEY)] | None,
    Header(alias=HEADER, description="a repeat with the same key and body within 24 h returns the first "
                                     "response and creates nothing; the same key with another body is `409 "
                                     "idempotency_conflict`"),
]


@cache
def _runner(table_name: str) -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    # Powertools' idempotency utility loads with the first request that sends a key, not at every cold start.
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    config = IdempotencyConfig(event_key_jmespath="key", payload_validation_jmespath="fingerprint",
                               expires_after_seconds=TTL_SECONDS, raise_on_no_idempotency_key=True,
                               hash_function="sha256")
    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client("dynamodb"))

    @idempotent_function(data_keyword_argument="request", config=config, persistence_store=persistence)
    def run(request: dict[str, Any]) -> dict[str, Any]:
        status, body = _work.get()()
        text = serialise(body)
        if SEALED_FIELD in body:
            return {"status": status, "sealed": sealing.seal(webhook_key(), text, _context(request))}
        return {"status": status, "text": text}

    return run, config


def serialise(body: dict[str, Any]) -> str:
    """The one serialisation of an idempotent answer (compact, as every other answer of the API)."""
    return json.dumps(body, separators=(",", ":"))


def scoped_key(c: Caller, method: str, path: str, key: str) -> str:
    """What a stored answer is found by: user, scope, method, canonical path and the client's key."""
    return "|".join((c.user_id, c.scope, method.upper(), path.rstrip("/") or "/", key))


def _context(request: dict[str, Any]) -> str:
    return f"idempotency:{request['key']}"


def respond(router: Any, key: str | None, work: Work) -> Response[dict[str, Any]]:
    """Run ``work`` once per Idempotency-Key ``key`` (validated by :data:`Key`), or every time without one."""
    if key is None:
        status, body = work()
        return json_response(status, body)
    event = router.current_event
    c = caller(router)
    run, config = _runner(settings().idempotency_table_name)
    if router.lambda_context is not None and hasattr(router.lambda_context, "get_remaining_time_in_millis"):
        config.register_lambda_context(router.lambda_context)
    request = {
        "key": scoped_key(c, event.http_method, event.path, key),
        "fingerprint": hashlib.sha256((event.body or "").encode()).hexdigest(),
    }
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    token = _work.set(work)
    try:
        out = run(request=request)
    except IdempotencyValidationError as err:
        raise IdempotencyConflict("this Idempotency-Key was used with another body") from err
    except IdempotencyAlreadyInProgressError as err:
        raise IdempotencyConflict("a request with this Idempotency-Key is still in progress") from err
    finally:
        _work.reset(token)
    # Records stored before the scoped key format are never found (the key is part of the lookup).
    text = sealing.unseal(webhook_key(), out["sealed"], _context(request)) if "sealed" in out else out["text"]
    return json_response(int(out["status"]), json.loads(text))
