"""The common shape of every QR Pro function: Python 3.13 on arm64, X-Ray
active (but where a trace per invocation costs more than it tells: the
redirect), its own log group with retention, its own IAM role (no managed
policies; logs are granted on its own log group only), the shared layer and
the Powertools environment."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.bundling import function_code, layer_code

LOG_RETENTION = logs.RetentionDays.ONE_MONTH
RUNTIME = lambda_.Runtime.PYTHON_3_13


class SharedLayer(Construct):
    """The ``qrpro`` package plus powertools, pydantic and segno (``python/`` in the layer)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self, "Layer",
            code=layer_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="qrpro package + aws-lambda-powertools[tracer], pydantic, segno",
        )


class QrFunction(Construct):
    """One function: ``lambdas.<name>.handler.handler`` from its own asset."""

    def __init__(self, scope: Construct, construct_id: str, *, name: str, layer: lambda_.ILayerVersion,
                 environment: Mapping[str, str], timeout: Duration = Duration.seconds(10),
                 memory_size: int = 512, log_level: str = "INFO", reserved_concurrency: int | None = None,
                 platform_logs: bool = True, tracing: lambda_.Tracing = lambda_.Tracing.ACTIVE) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        self.log_group = logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self, "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"QR Pro {name} function (least privilege)",
        )
        # Its own log group only (no AWSLambdaBasicExecutionRole: that grants every log group).
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[self.log_group.log_group_arn],
        ))
        env = dict(environment)
        env.update({
            "POWERTOOLS_SERVICE_NAME": f"qrpro-{name}",
            "POWERTOOLS_METRICS_NAMESPACE": "QRPro",
            "POWERTOOLS_LOG_LEVEL": log_level,
        })
        self.function = lambda_.Function(
            self, "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=f"lambdas.{name}.handler.handler",
            code=function_code(name),
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            tracing=tracing,
            timeout=timeout,
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrency,
            # Without platform logs, Lambda writes no START/END/REPORT lines (~0.3 KB per invocation: $0.15
            # per million at $0.50/GB); errors and warnings still reach the log group (docs/performance.md).
            logging_format=None if platform_logs else lambda_.LoggingFormat.JSON,
            system_log_level_v2=None if platform_logs else lambda_.SystemLogLevel.WARN,
            environment=env,
            description=f"QR Pro {name}",
        )

    @property
    def stack(self) -> Stack:
        return Stack.of(self)

    def allow(self, actions: list[str], resources: list[str]) -> None:
        """Add one least-privilege statement (explicit actions, explicit resources)."""
        self.role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))
