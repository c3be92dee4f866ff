"""API keys: the use cases of docs/api.md sections 2 and 11.

Keys belong to the user, not to the team context: listing and revoking only
ever touch the caller's own keys. The authorizer's one question, "which live
key is this token?", is ``authenticate``. Imported by the authorizer on its
cold start: keep the imports to the keys repository and the pure token rules.
"""

from __future__ import annotations

import uuid
from typing import Any

from qrpro.data import apikeys as repo
from qrpro.data.apikeys import ApiKey
from qrpro.data.table import Cancelled, or_not_found
from qrpro.domain import apikeys as tokens
from qrpro.domain.errors import NotFound
from qrpro.domain.ids import is_id

LAST_USED_PRECISION = 60  # seconds: at most one last_used_at write per key per minute


def create(user_id: str, label: str | None, now: int) -> tuple[str, str]:
    """A new key for ``user_id``: returns ``(key_id, raw token)``; the token is
    shown this once and never stored. An unknown user is an ``AccountError``."""
    token = tokens.new_token()
    api_key = ApiKey(id=str(uuid.uuid4()), user_id=user_id, key_hash=tokens.token_hash(token),
                     prefix=token[: tokens.PREFIX_LEN], created_at=now, label=label or "")
    try:
        repo.create_tx(api_key).run()
    except Cancelled as cancel:
        if "user" in cancel.failed:
            from qrpro.data.accounts import AccountError  # the admin's error: not on the authorizer's cold start

            raise AccountError(f"no user {user_id}") from cancel
        raise
    return api_key.id, token


def authenticate(token: str, now: int) -> ApiKey | None:
    """The live key of a raw token, or None (a malformed token costs no read).
    Refreshes its ``last_used_at`` when that is over a minute old: a
    bookkeeping write that never fails the request."""
    if not tokens.well_formed(token):
        return None
    api_key = repo.by_hash(tokens.token_hash(token))
    if api_key is not None and now - (api_key.last_used_at or 0) >= LAST_USED_PRECISION:
        repo.set_last_used(api_key.key_hash, now, older_than=now - LAST_USED_PRECISION)
    return api_key


def list_keys(user_id: str) -> list[dict[str, Any]]:
    """The user's live keys, newest first."""
    keys = sorted(repo.list_for(user_id), key=lambda i: (i.created_at, i.id), reverse=True)
    return [i.public() for i in keys]


def revoke(user_id: str, key_id: str) -> None:
    """Revoke one of the user's keys, effective on the next request; any other id is ``404``."""
    if not is_id(key_id):
        raise NotFound()
    repo.delete(or_not_found(repo.get(user_id, key_id)))
