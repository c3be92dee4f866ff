"""The base of every request body model: JSON types only, unknown fields refused.

``strict``: no coercion, so ``"off"``, ``"yes"`` or ``1`` are not booleans and
``7`` is not a string (contract section 1: ``400 validation_error`` on that
field). A JSON array where an object is expected is refused before routing
(``qrpro.api.pipeline``), since the body never reaches a model as an array.
``defer_build``: a model's validator is built on its first use, so a cold
start pays only for the bodies its request has.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)
