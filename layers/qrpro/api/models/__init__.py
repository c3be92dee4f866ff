"""Response models: the API's objects (docs/api.md) as the OpenAPI document
shows them. Routes name them in ``errors(..., ok="Model")``, the error
envelope is ``ErrorBody``; they
document, they do not validate (the routes return plain dicts built by the
data layer). Extra properties are allowed: documentation, not a filter.
Their schemas are built when the document is (``defer_build``), not at every
cold start of the api function.

One module per resource, as ``lambdas/api/routes/``; every model is
importable from here too."""

from __future__ import annotations

from qrpro.api.models.base import ErrorBody, Scope
from qrpro.api.models.codes import BulkFailure, BulkResult, Code, CodeList, History, HistoryEntry, ImportResult
from qrpro.api.models.groups import Group, GroupDeleted, GroupDetail, GroupList
from qrpro.api.models.keys import Key, KeyList, KeyRevoked
from qrpro.api.models.teams import Member, MemberList, Team, TeamList
from qrpro.api.models.user import CodesUsed, ExportLink, Limits, RequestsToday, ScansThisMonth, Usage, User
from qrpro.api.models.webhooks import (
    Delivery,
    DeliveryList,
    Secret,
    Webhook,
    WebhookCreated,
    WebhookDeleted,
    WebhookList,
)

__all__ = [
    "BulkFailure", "BulkResult", "Code", "CodeList", "CodesUsed", "Delivery", "DeliveryList", "ErrorBody", "ExportLink",
    "Group", "GroupDeleted", "GroupDetail", "GroupList", "History", "HistoryEntry", "ImportResult", "Key", "KeyList",
    "KeyRevoked", "Limits", "Member", "MemberList", "RequestsToday", "ScansThisMonth", "Scope", "Secret", "Team",
    "TeamList", "Usage", "User", "Webhook", "WebhookCreated", "WebhookDeleted", "WebhookList",
]
