"""Each function's IAM role, enforced on the local stack.

Every AWS call a function makes locally goes through botocore's
``BaseClient._make_api_call``; in each function's worker process that method
is wrapped to check the call against the function's role from the
synthesized template, with ARNs resolved to the local resources. A call the
role does not allow fails as in AWS: ``ClientError`` with
``AccessDeniedException`` (DynamoDB, Secrets Manager) or ``AccessDenied``
(S3, SQS, SES), before any request is sent.

Actions and resources are matched by moto's evaluator
(``moto.iam.access_control.IAMPolicyStatement``). Conditions are evaluated
here, because moto only evaluates ``StringEquals``: the String* operators
with the ``ForAllValues:``/``ForAnyValue:`` set qualifiers and ``IfExists``,
``Arn*`` and ``Bool``, over the keys the local stack can know (``dynamodb:LeadingKeys``,
``aws:SecureTransport``). Any other operator fails the check loudly rather
than pass silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.client
import botocore.session
from botocore.exceptions import ClientError
from moto.iam.access_control import IAMPolicyStatement, PermissionResult

from qrpro_cli.template import ACCOUNT, PARTITION, REGION


@dataclass(frozen=True)
class Check:
    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()  # condition key -> values
    alternatives: tuple[str, ...] = ()  # other resources that would authorize the call as well


class Policy:
    """The identity-based policies of one role, resolved to local ARNs."""

    def __init__(self, documents: list[dict[str, Any]]) -> None:
        self.statements: list[dict[str, Any]] = []
        for doc in documents:
            statements = doc["Statement"]
            self.statements += statements if isinstance(statements, list) else [statements]

    def allows(self, check: Check) -> bool:
        """AWS's order: an explicit Deny wins, then any Allow, else implicit deny."""
        allowed = False
        context = dict(check.context)
        for statement in self.statements:
            bare = {k: v for k, v in statement.items() if k != "Condition"}
            result = IAMPolicyStatement(bare).is_action_permitted(check.action, check.resource)
            if result == PermissionResult.NEUTRAL or not conditions_met(statement.get("Condition", {}), context):
                continue
            if result == PermissionResult.DENIED:
                return False
            allowed = True
        return allowed


def like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


_MATCH = {
    "StringEquals": lambda p, v: p == v,
    "StringNotEquals": lambda p, v: p != v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": like,
    "StringNotLike": lambda p, v: not like(p, v),
    "Bool": lambda p, v: p.lower() == v.lower(),
    "ArnEquals": lambda p, v: p == v,
    "ArnLike": like,
}
_NEGATED = {"StringNotEquals", "StringNotLike"}


def conditions_met(conditions: dict[str, dict[str, Any]], context: dict[str, tuple[str, ...]]) -> bool:
    for operator, keys in conditions.items():
        qualifier, _, op = operator.rpartition(":")
        if_exists = op.endswith("IfExists")
        op = op.removesuffix("IfExists")
        if op not in _MATCH or qualifier not in ("", "ForAllValues", "ForAnyValue"):
            raise ValueError(f"IAM condition operator {operator} is not evaluated by the local stack")
        match = _MATCH[op]
        for key, wanted in keys.items():
            patterns = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
            values = context.get(key)

            def one(value: str, match: Any = match, patterns: list[str] = patterns, op: str = op) -> bool:
                hits = [match(p, value) for p in patterns]
                return all(hits) if op in _NEGATED else any(hits)

            if qualifier == "ForAllValues":
                ok = values is None or all(one(v) for v in values)
            elif qualifier == "ForAnyValue":
                ok = values is not None and any(one(v) for v in values)
            elif values is None:
                ok = if_exists
            else:
                ok = len(values) == 1 and one(values[0])
            if not ok:
                return False
    return True


# --- what each API call asks of IAM ---

def table_arn(name: str) -> str:
    return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def queue_arn(url: str) -> str:
    return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{url.rstrip('/').rsplit('/', 1)[-1]}"


SQS_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
               "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}
S3_OBJECT_ACTIONS = {"CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
                     "CompleteMultipartUpload": "PutObject", "HeadObject": "GetObject",
                     "CopyObject": "PutObject", "ListParts": "ListMultipartUploadParts"}
S3_BUCKET_ACTIONS = {"ListObjectsV2": "ListBucket", "ListObjects": "ListBucket", "HeadBucket": "ListBucket",
                     "ListMultipartUploads": "ListBucketMultipartUploads"}
DYNAMO_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                   "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


class Calls:
    """Maps one botocore call to the IAM checks AWS makes for it."""

    def __init__(self, hash_keys: dict[str, str]) -> None:
        self.hash_keys = hash_keys  # table (or table/index/name) -> partition key attribute

    def checks(self, service: str, operation: str, params: dict[str, Any]) -> Iterator[Check]:
        if service == "dynamodb":
            yield from self._dynamodb(operation, params)
        elif service == "sqs":
            yield Check(f"sqs:{SQS_ACTIONS.get(operation, operation)}", queue_arn(params.get("QueueUrl", "*")))
        elif service == "s3":
            bucket = params.get("Bucket", "*")
            if "Key" in params:
                action = S3_OBJECT_ACTIONS.get(operation, operation)
                yield Check(f"s3:{action}", f"arn:{PARTITION}:s3:::{bucket}/{params['Key']}")
            else:
                yield Check(f"s3:{S3_BUCKET_ACTIONS.get(operation, operation)}", f"arn:{PARTITION}:s3:::{bucket}")
        elif service == "ses":
            # SES authorizes the identity that sends: the address itself or its domain.
            source = str(params.get("Source", "")).rsplit("<", 1)[-1].rstrip(">")
            yield Check(f"ses:{operation}", _identity(source), alternatives=(_identity(source.rsplit("@", 1)[-1]),))
        elif service == "secretsmanager":
            yield Check(f"secretsmanager:{operation}", str(params.get("SecretId", "*")))
        elif service == "apigateway":
            yield apigateway_check(operation, params)
        else:
            yield Check(f"{service}:{operation}", "*")

    def _dynamodb(self, operation: str, params: dict[str, Any]) -> Iterator[Check]:
        if operation in ("TransactWriteItems", "TransactGetItems"):
            for item in params.get("TransactItems", []):
                (kind, body), = item.items()
                yield self._item(DYNAMO_TRANSACT[kind], body["TableName"], body.get("Key") or body.get("Item"))
        elif operation in ("BatchGetItem", "BatchWriteItem"):
            for table, requests in params.get("RequestItems", {}).items():
                keys = requests.get("Keys", []) if operation == "BatchGetItem" else [
                    (r.get("PutRequest") or {}).get("Item") or (r.get("DeleteRequest") or {}).get("Key")
                    for r in requests]
                yield Check(f"dynamodb:{operation}", table_arn(table), self._leading(table, keys))
        elif operation in ("Query", "Scan"):
            table, index = params["TableName"], params.get("IndexName")
            resource = table_arn(table) + (f"/index/{index}" if index else "")
            keys = self._query_keys(table, params) if operation == "Query" and not index else []
            yield Check(f"dynamodb:{operation}", resource, self._leading(table, keys) if keys else ())
        elif "TableName" in params:
            yield self._item(operation, params["TableName"], params.get("Key") or params.get("Item"))
        else:
            yield Check(f"dynamodb:{operation}", "*")

    def _item(self, action: str, table: str, key: dict[str, Any] | None) -> Check:
        return Check(f"dynamodb:{action}", table_arn(table), self._leading(table, [key] if key else []))

    def _leading(self, table: str, keys: Sequence[dict[str, Any] | None]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        attr = self.hash_keys.get(table)
        values = tuple(_scalar(k[attr]) for k in keys if k and attr and attr in k)
        return (("dynamodb:LeadingKeys", values),) if values else ()

    def _query_keys(self, table: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        attr = self.hash_keys.get(table)
        names = params.get("ExpressionAttributeNames") or {}
        values = params.get("ExpressionAttributeValues") or {}
        for name, placeholder in re.findall(r"([#\w]+)\s*=\s*(:\w+)", params.get("KeyConditionExpression", "")):
            if names.get(name, name) == attr and placeholder in values:
                return [{name: values[placeholder]} for name in [attr] if name]
        return []


@cache
def _apigateway_model() -> Any:
    return botocore.session.get_session().get_service_model("apigateway")


def apigateway_check(operation: str, params: dict[str, Any]) -> Check:
    """API Gateway's IAM model: the action is the HTTP verb (``apigateway:POST``), the resource the
    path the call is sent to (``arn:aws:apigateway:<region>::/usageplans/<id>/keys``), both taken
    from botocore's description of the operation."""
    model = _apigateway_model().operation_model(operation)
    path = model.http["requestUri"].split("?", 1)[0]
    for name, shape in model.input_shape.members.items():
        if shape.serialization.get("location") == "uri":
            path = re.sub(r"\{" + re.escape(shape.serialization.get("name", name)) + r"\+?\}",
                          str(params.get(name, "*")), path)
    return Check(f"apigateway:{model.http['method']}", f"arn:{PARTITION}:apigateway:{REGION}::{path}")


def _scalar(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value.values())))
    return str(value)


def _identity(name: str) -> str:
    return f"arn:{PARTITION}:ses:{REGION}:{ACCOUNT}:identity/{name}"


_DENIED_CODE = {"dynamodb": "AccessDeniedException", "secretsmanager": "AccessDeniedException"}


def enforce(policy: Policy, calls: Calls, role_name: str, function_name: str) -> None:
    """Wrap botocore in this process: every call is checked against ``policy`` first."""
    original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
    principal = f"arn:{PARTITION}:sts::{ACCOUNT}:assumed-role/{role_name}/{function_name}"

    def checked(client: Any, operation: str, params: dict[str, Any]) -> Any:
        service = client.meta.service_model.signing_name
        for check in calls.checks(service, operation, params):
            candidates = [check] + [Check(check.action, r, check.context) for r in check.alternatives]
            if not any(policy.allows(c) for c in candidates):
                code = _DENIED_CODE.get(service, "AccessDenied")
                message = (f"User: {principal} is not authorized to perform: {check.action} on resource: "
                           f"{check.resource} because no identity-based policy allows the {check.action} action")
                status = 400 if code.endswith("Exception") else 403
                error: Any = {"Error": {"Code": code, "Message": message},
                              "ResponseMetadata": {"HTTPStatusCode": status}}
                raise ClientError(error, operation)
        return original(client, operation, params)

    botocore.client.BaseClient._make_api_call = checked  # type: ignore[attr-defined]
