"""The main table (exactly ``layers/qrpro/data/schema.py``), the idempotency
table, the export bucket and the cursor-signing secret."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct


def private_bucket(scope: Construct, construct_id: str, **kwargs: Any) -> s3.Bucket:
    """A bucket only the stack's roles use: SSE-S3, no public access, TLS only, no ACLs, retained."""
    return s3.Bucket(
        scope, construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        **kwargs,
    )

# The same names as qrpro.data.keys (tests/infra compares with schema.MAIN_TABLE).
PK, SK = "pk", "sk"
LSI1, LSI1SK = "lsi1", "lsi1sk"
GSI1, GSI1PK, GSI1SK = "gsi1", "gsi1pk", "gsi1sk"
TTL = "ttl"
S = dynamodb.AttributeType.STRING


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        self.table = dynamodb.Table(
            self, "Table",
            partition_key=dynamodb.Attribute(name=PK, type=S),
            sort_key=dynamodb.Attribute(name=SK, type=S),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            time_to_live_attribute=TTL,
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
        )
        self.table.add_local_secondary_index(
            index_name=LSI1,
            sort_key=dynamodb.Attribute(name=LSI1SK, type=S),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.table.add_global_secondary_index(
            index_name=GSI1,
            partition_key=dynamodb.Attribute(name=GSI1PK, type=S),
            sort_key=dynamodb.Attribute(name=GSI1SK, type=S),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        stack_arn = self.table.table_arn
        # Explicit index ARNs: no `index/*` wildcard in any policy.
        self.table_and_indexes = [stack_arn, f"{stack_arn}/index/{LSI1}", f"{stack_arn}/index/{GSI1}"]

        self.idempotency_table = dynamodb.Table(
            self, "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=S),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            time_to_live_attribute="expiration",
            removal_policy=RemovalPolicy.DESTROY,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
        )

        # Versioned like every bucket of the stack (an overwrite or a delete can be undone); an
        # export is written once, so a noncurrent version exists only after its expiry, for a day.
        self.export_bucket = private_bucket(
            self, "ExportBucket",
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-exports", enabled=True, expiration=Duration.days(1),
                noncurrent_version_expiration=Duration.days(1),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )],
        )

        # Signs list cursors (tamper evidence); read by the api and export functions only.
        self.cursor_secret = secretsmanager.Secret(
            self, "CursorSecret",
            description="QR Pro: HMAC key that signs list cursors",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True),
        )

        # Seals webhook signing secrets at rest (AES-GCM, qrpro.domain.sealing); read by the api
        # (creates and rotates them, signs the test ping) and webhooks (signs deliveries) functions
        # only. Retained like the table: without it the sealed secrets could not be opened.
        self.webhook_key = secretsmanager.Secret(
            self, "WebhookKey",
            description="QR Pro: key material that seals webhook signing secrets in the table",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True),
            removal_policy=RemovalPolicy.RETAIN,
        )
