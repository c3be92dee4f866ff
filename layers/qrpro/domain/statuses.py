"""A code's status values as constants (docs/api.md section 6), import-light
(stdlib only): the redirect decides on them for every scan. ``CodeStatus`` in
``qrpro.domain.codes`` is the same list as the API's named type (a test keeps
them equal)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    GRACE = "grace"
    EXPIRED = "expired"
