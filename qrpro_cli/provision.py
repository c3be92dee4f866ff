"""Create on the local engines what the template declares (tables, queues,
secrets, buckets, and in moto's API Gateway the REST API, its usage plans, API
keys and their usage-plan keys), and resolve the template's references to them.

Local names are the logical ids without CDK's hash suffix (``QueuesScans``),
so they stay the same across restarts and a persistent data dir keeps its
tables. The edges are named after fixed local ids: the REST API is ``local``
(``https://local.execute-api...`` in an environment variable becomes the
local API URL), the distribution ``local.cloudfront.net`` (the redirect URL).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from pathlib import Path
from typing import Any

import boto3

from qrpro_cli.gateway import API_ID
from qrpro_cli.iam import table_arn
from qrpro_cli.template import ACCOUNT, PARTITION, REGION, Template, TemplateError, resolve, strip_hash

DISTRIBUTION_DOMAIN = "local.cloudfront.net"
FUNCTION_URL = f"https://{API_ID}.lambda-url.{REGION}.on.aws/"
TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "LocalSecondaryIndexes", "GlobalSecondaryIndexes", "BillingMode")
QUEUE_KEYS = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds",
              "MaximumMessageSize")


class Provisioned:
    """The local physical resources of one template, and its references resolved to them."""

    def __init__(self, template: Template, data_dir: Path | None) -> None:
        self.template = template
        self.data_dir = data_dir
        self.attrs: dict[tuple[str, str | None], str] = {}

    def attr(self, lid: str, name: str | None) -> str:
        if (lid, name) in self.attrs:
            return self.attrs[(lid, name)]
        kind = self.template.resources.get(lid, {}).get("Type", "")
        local = strip_hash(lid)
        generic = {
            ("AWS::Lambda::Function", None): f"qrpro-{local}",
            ("AWS::Lambda::Function", "Arn"): f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:qrpro-{local}",
            ("AWS::IAM::Role", None): local,
            ("AWS::IAM::Role", "Arn"): f"arn:{PARTITION}:iam::{ACCOUNT}:role/{local}",
            ("AWS::Logs::LogGroup", "Arn"): f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:/aws/{local}:*",
            ("AWS::Events::Rule", "Arn"): f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{local}",
            ("AWS::ApiGateway::RestApi", None): API_ID,
            ("AWS::ApiGateway::RestApi", "RootResourceId"): "root",
            ("AWS::CloudFront::Distribution", "DomainName"): DISTRIBUTION_DOMAIN,
            ("AWS::CloudFront::Distribution", None): "LOCAL",
            ("AWS::Lambda::Url", "FunctionUrl"): FUNCTION_URL,
        }
        if (kind, name) in generic:
            return generic[(kind, name)]
        if kind == "AWS::ApiGateway::Stage" and name is None:
            return str(self.template.resources[lid]["Properties"]["StageName"])
        if kind == "AWS::Lambda::Url" and name == "FunctionArn":
            target = self.template.resources[lid]["Properties"]["TargetFunctionArn"]
            return str(resolve(target, self.attr))
        if name is None or name in ("Arn", "Id"):  # anything the local stack does not create
            return local if name is None else f"arn:{PARTITION}:local:{REGION}:{ACCOUNT}:{local}"
        raise TemplateError(f"{lid}.{name} ({kind}) has no local value")

    def resolve(self, node: Any) -> Any:
        return resolve(node, self.attr)

    # --- creation ---

    def create(self) -> None:
        self._tables()
        self._queues()
        self._secrets()
        self._buckets()
        self._usage_plans()

    def _tables(self) -> None:
        ddb = boto3.client("dynamodb")
        existing = set(ddb.list_tables().get("TableNames", []))
        for lid, props in self.template.of_type("AWS::DynamoDB::Table"):
            name = props.get("TableName") or strip_hash(lid)
            if name not in existing:
                spec: dict[str, Any] = {k: props[k] for k in TABLE_KEYS if k in props}
                stream = props.get("StreamSpecification")
                if stream:
                    spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
                ddb.create_table(TableName=name, **spec)
                ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
                ttl = props.get("TimeToLiveSpecification") or {}
                if ttl.get("Enabled"):
                    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                        "Enabled": True, "AttributeName": ttl["AttributeName"]})
            self.attrs[(lid, None)] = name
            self.attrs[(lid, "Arn")] = table_arn(name)
            if props.get("StreamSpecification"):
                self.attrs[(lid, "StreamArn")] = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]

    def _queues(self) -> None:
        sqs = boto3.client("sqs")
        queues = dict(self.template.of_type("AWS::SQS::Queue"))
        # Dead-letter queues first: the others' redrive policies point at them.
        for lid in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]):
            props = queues[lid]
            attributes: dict[str, Any] = {k: str(props[k]) for k in QUEUE_KEYS if k in props}
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(self.resolve(props["RedrivePolicy"]))
            name = props.get("QueueName") or strip_hash(lid)
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.attrs.update({(lid, None): url, (lid, "Arn"): arn, (lid, "QueueName"): name, (lid, "QueueUrl"): url})

    def _secrets(self) -> None:
        client = boto3.client("secretsmanager")
        for lid, props in self.template.of_type("AWS::SecretsManager::Secret"):
            name = strip_hash(lid)
            value = props.get("SecretString") or self._secret_value(name, props.get("GenerateSecretString") or {})
            arn = client.create_secret(Name=name, SecretString=value)["ARN"]
            self.attrs[(lid, None)] = arn
            self.attrs[(lid, "Id")] = arn

    def _secret_value(self, name: str, generate: dict[str, Any]) -> str:
        """A generated secret, kept in the data dir so sealed data stays readable across restarts."""
        alphabet = string.ascii_letters + string.digits
        if not generate.get("ExcludePunctuation"):
            alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
        fresh = "".join(secrets.choice(alphabet) for _ in range(int(generate.get("PasswordLength", 32))))
        if self.data_dir is None:
            return fresh
        path = self.data_dir / "secrets" / name
        if not path.exists():
            path.parent.mkdir(mode=0o700, exist_ok=True)
            path.write_text(fresh)
            path.chmod(0o600)
        return path.read_text().strip()

    def _buckets(self) -> None:
        s3 = boto3.client("s3")
        for lid, props in self.template.of_type("AWS::S3::Bucket"):
            name = props.get("BucketName") or re.sub(r"[^a-z0-9-]", "", strip_hash(lid).lower())
            s3.create_bucket(Bucket=name)
            if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            self.attrs.update({(lid, None): name, (lid, "Arn"): f"arn:{PARTITION}:s3:::{name}"})


    def _usage_plans(self) -> None:
        """The REST API (id ``local``, so usage plans can name it), then the usage plans with their
        quota and throttle, the API keys and their usage-plan keys, with moto's ids as their Ref."""
        apigw = boto3.client("apigateway")
        for lid, props in self.template.of_type("AWS::ApiGateway::RestApi"):
            apigw.create_rest_api(name=str(props.get("Name", strip_hash(lid))), tags={"_custom_id_": API_ID})
        for lid, props in self.template.of_type("AWS::ApiGateway::UsagePlan"):
            spec: dict[str, Any] = {"name": str(props.get("UsagePlanName", strip_hash(lid))),
                                    "apiStages": [{"apiId": self.resolve(s["ApiId"]), "stage": self.resolve(s["Stage"])}
                                                  for s in props.get("ApiStages", [])]}
            if "Quota" in props:
                quota = props["Quota"]
                spec["quota"] = {"limit": int(quota["Limit"]), "period": quota["Period"],
                                 "offset": int(quota.get("Offset", 0))}
            if "Throttle" in props:
                spec["throttle"] = {"rateLimit": float(props["Throttle"]["RateLimit"]),
                                    "burstLimit": int(props["Throttle"]["BurstLimit"])}
            plan_id = apigw.create_usage_plan(**spec)["id"]
            self.attrs.update({(lid, None): plan_id, (lid, "Id"): plan_id})
        for lid, props in self.template.of_type("AWS::ApiGateway::ApiKey"):
            kw: dict[str, Any] = {"name": str(props.get("Name", strip_hash(lid))),
                                  "enabled": bool(props.get("Enabled", False))}
            if "Value" in props:
                kw["value"] = str(self.resolve(props["Value"]))
            key_id = apigw.create_api_key(**kw)["id"]
            self.attrs.update({(lid, None): key_id, (lid, "APIKeyId"): key_id})
        for _, props in self.template.of_type("AWS::ApiGateway::UsagePlanKey"):
            apigw.create_usage_plan_key(usagePlanId=str(self.resolve(props["UsagePlanId"])),
                                        keyId=str(self.resolve(props["KeyId"])), keyType=props["KeyType"])


def local_urls(value: str, api_url: str, redirect_url: str, stage: str) -> str:
    """The edges' AWS URLs in an environment value, made local."""
    value = re.sub(rf"https://{API_ID}\.execute-api\.[^/]+/{re.escape(stage)}", api_url, value)
    return value.replace(f"https://{DISTRIBUTION_DOMAIN}", redirect_url)

