"""Operations: one SNS topic for alarms (KMS-encrypted, TLS only; an email
subscription when ``qrpro:alarmEmail`` is set), alarms that notify it, and one
dashboard with the service's health at a glance. docs/operations.md says what
each alarm means and what to do about it.

CloudFront publishes its metrics in us-east-1 only (dimension ``Region=Global``)
and an alarm can only watch metrics of its own region: the CloudFront 5xx
alarm exists only when the stack is deployed in us-east-1 (a CloudFormation
condition); the dashboard graphs the metric from us-east-1 wherever it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import CfnCondition, CfnResource, Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)
# What the redirect prints as EMF when SQS did not take a scan (lambdas/redirect/handler.py).
SCAN_METRICS_NAMESPACE, REDIRECT_SERVICE = "QRPro", "qrpro-redirect"
UNQUEUED_SCAN_METRICS = ("ScansParked", "ScansBuffered")
# What the usagekeys consumer prints when a key must stay on the fallback gateway key (API Gateway's
# 10,000 keys per account and region reached, or CreateApiKey throttled): lambdas/usagekeys/handler.py.
USAGE_KEYS_SERVICE, USAGE_KEYS_ON_FALLBACK = "qrpro-usagekeys", "UsageKeysOnFallback"
# How far behind the aggregates are once a fold job is done: lambdas/compaction/handler.py.
COMPACTION_SERVICE, FOLD_LAG = "qrpro-compaction", "FoldLagSeconds"
FOLD_LAG_SECONDS = 300  # the promise (docs/analytics.md): folded within 5 minutes
# Scans are counted within seconds: a 10-minute-old message means the aggregator is stuck.
SCANS_OLDEST_MESSAGE_SECONDS = 600
# The outbox is near real time; its records expire after 24 h (stream retention, max record age).
EVENTS_ITERATOR_AGE_MS = 5 * 60 * 1000
CLOUDFRONT_5XX_RATE_PERCENT = 5
# The operations the functions use (a math expression takes at most 10 metrics).
TABLE_OPERATIONS = [
    dynamodb.Operation.GET_ITEM, dynamodb.Operation.BATCH_GET_ITEM, dynamodb.Operation.QUERY,
    dynamodb.Operation.PUT_ITEM, dynamodb.Operation.UPDATE_ITEM, dynamodb.Operation.DELETE_ITEM,
    dynamodb.Operation.BATCH_WRITE_ITEM, dynamodb.Operation.TRANSACT_WRITE_ITEMS, dynamodb.Operation.GET_RECORDS,
]
GTE = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
GT = cw.ComparisonOperator.GREATER_THAN_THRESHOLD


def cloudfront_metric(distribution: cloudfront.IDistribution, name: str, statistic: str,
                      region: str | None = None) -> cw.Metric:
    return cw.Metric(namespace="AWS/CloudFront", metric_name=name, statistic=statistic, period=PERIOD,
                     dimensions_map={"DistributionId": distribution.distribution_id, "Region": "Global"},
                     region=region)


class Monitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, functions: Mapping[str, lambda_.IFunction],
                 dlqs: Mapping[str, sqs.IQueue], scans_queue: sqs.IQueue, compaction_queue: sqs.IQueue,
                 rest_api: apigw.RestApi,
                 tables: Mapping[str, dynamodb.ITable], failed_events: s3.IBucket, failed_events_filter: str,
                 distribution: cloudfront.IDistribution, in_us_east_1: CfnCondition,
                 alarm_email: str | None = None) -> None:
        super().__init__(scope, construct_id)
        # Alarms publish to an encrypted topic only through a customer key that CloudWatch may use
        # (the AWS-managed SNS key's policy cannot grant it).
        self.key = kms.Key(self, "AlarmsKey", description="QR Pro: encrypts the alarms topic",
                           enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY,
                           pending_window=Duration.days(7))
        self.key.add_to_resource_policy(iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=["*"],
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")]))
        self.topic = sns.Topic(self, "Alarms", display_name="QR Pro alarms", master_key=self.key,
                               enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []
        self.conditional_alarms: list[cw.Alarm] = []

        for name, fn in functions.items():
            self._alarm(f"{name.title()}Errors", f"{name} function errors", fn.metric_errors(period=PERIOD))
            self._alarm(f"{name.title()}Throttles", f"{name} function throttles",
                        fn.metric_throttles(period=PERIOD))
        for name, queue in dlqs.items():
            self._alarm(f"{name.title()}DlqDepth", f"{name} dead-letter queue has messages",
                        queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                        threshold=0, comparison=GT)
        failed_writes = cw.Metric(namespace="AWS/S3", metric_name="PutRequests", statistic="Sum", period=PERIOD,
                                  dimensions_map={"BucketName": failed_events.bucket_name,
                                                  "FilterId": failed_events_filter})
        self._alarm("EventsFailedBatches", "events stream batches given up (kept in the failed-events bucket)",
                    failed_writes)
        self._alarm("ScansQueueOldestMessage", "scans wait in the queue: the aggregator is not keeping up",
                    scans_queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                    threshold=SCANS_OLDEST_MESSAGE_SECONDS, comparison=GT)
        # FoldLag comes from finished jobs: jobs that wait (workers failing or throttled) are seen here.
        self._alarm("CompactionQueueOldestMessage", "fold jobs wait: the compaction is not running them",
                    compaction_queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                    threshold=FOLD_LAG_SECONDS, comparison=GT)
        iterator_age = functions["events"].metric("IteratorAge", period=PERIOD, statistic="Maximum")
        self._alarm("EventsIteratorAge", "the outbox stream falls behind (webhook events delayed)",
                    iterator_age, threshold=EVENTS_ITERATOR_AGE_MS, comparison=GT)
        for name, table in tables.items():
            for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
                self._alarm(f"{name.title()}{metric}", f"{name} table {metric}",
                            table.metric(metric, period=PERIOD, statistic="Sum"))
            self._alarm(f"{name.title()}SystemErrors", f"{name} table system errors",
                        table.metric_system_errors_for_operations(operations=TABLE_OPERATIONS, period=PERIOD))
        self._alarm("Api5xx", "API 5XX responses", rest_api.metric_server_error(period=PERIOD))
        scan_metrics = {name: cw.Metric(namespace=SCAN_METRICS_NAMESPACE, metric_name=name, statistic="Sum",
                                        period=PERIOD, dimensions_map={"service": REDIRECT_SERVICE})
                        for name in UNQUEUED_SCAN_METRICS}
        self._alarm("ScansParked", "the redirect could not enqueue scans (SQS): parked in DynamoDB",
                    scan_metrics["ScansParked"])
        self._alarm("ScansBuffered", "the redirect could reach neither SQS nor DynamoDB: scans held in memory",
                    scan_metrics["ScansBuffered"])
        self._alarm("UsageKeysOnFallback", "customer keys left on the fallback gateway key (API key quota or "
                    "CreateApiKey rate): run qrpro admin sync-usage-keys, docs/deploy.md",
                    cw.Metric(namespace=SCAN_METRICS_NAMESPACE, metric_name=USAGE_KEYS_ON_FALLBACK, statistic="Sum",
                              period=PERIOD, dimensions_map={"service": USAGE_KEYS_SERVICE}))
        self._alarm("FoldLag", "scans wait more than 5 minutes to be folded into the aggregates (the "
                    "compaction is not keeping up: raise its concurrency, docs/analytics.md)",
                    cw.Metric(namespace=SCAN_METRICS_NAMESPACE, metric_name=FOLD_LAG, statistic="Maximum",
                              period=PERIOD, dimensions_map={"service": COMPACTION_SERVICE}),
                    threshold=FOLD_LAG_SECONDS, comparison=GT, evaluation_periods=2)
        cf_5xx = self._alarm(
            "Cloudfront5xxRate", "short links answer 5xx (CloudFront, us-east-1 deployments only)",
            cloudfront_metric(distribution, "5xxErrorRate", "Average"),
            threshold=CLOUDFRONT_5XX_RATE_PERCENT, comparison=GT, evaluation_periods=2)
        cfn_alarm = cf_5xx.node.default_child
        assert isinstance(cfn_alarm, CfnResource)
        cfn_alarm.cfn_options.condition = in_us_east_1
        self.alarms.remove(cf_5xx)
        self.conditional_alarms.append(cf_5xx)

        self.dashboard = self._dashboard(functions, rest_api, scans_queue, dlqs, tables, distribution,
                                         scan_metrics, iterator_age, failed_writes)

    def _alarm(self, cid: str, what: str, metric: cw.IMetric, *, threshold: float = 1,
               comparison: cw.ComparisonOperator = GTE, evaluation_periods: int = 1) -> cw.Alarm:
        alarm = cw.Alarm(self, cid, alarm_description=f"QR Pro: {what}", metric=metric, threshold=threshold,
                         evaluation_periods=evaluation_periods, comparison_operator=comparison,
                         treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)
        return alarm

    def _dashboard(self, functions: Mapping[str, lambda_.IFunction], rest_api: apigw.RestApi,
                   scans_queue: sqs.IQueue, dlqs: Mapping[str, sqs.IQueue], tables: Mapping[str, dynamodb.ITable],
                   distribution: cloudfront.IDistribution, scan_metrics: Mapping[str, cw.IMetric],
                   iterator_age: cw.IMetric, failed_writes: cw.IMetric) -> cw.Dashboard:
        def graph(title: str, left: Sequence[cw.IMetric], right: Sequence[cw.IMetric] | None = None,
                  region: str | None = None) -> cw.GraphWidget:
            return cw.GraphWidget(title=title, left=list(left), right=list(right or []), width=8, height=6,
                                  region=region)

        redirect = functions["redirect"]
        dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        dashboard.add_widgets(cw.AlarmStatusWidget(title="QR Pro alarms", alarms=self.alarms, width=24, height=4))
        dashboard.add_widgets(
            graph("Short links (CloudFront, us-east-1)",
                  [cloudfront_metric(distribution, "Requests", "Sum", region="us-east-1")],
                  [cloudfront_metric(distribution, "5xxErrorRate", "Average", region="us-east-1"),
                   cloudfront_metric(distribution, "4xxErrorRate", "Average", region="us-east-1")],
                  region="us-east-1"),
            graph("Redirect function", [redirect.metric_invocations(period=PERIOD),
                                        redirect.metric_errors(period=PERIOD)],
                  [redirect.metric_duration(period=PERIOD, statistic="p99")]),
            graph("Scans not queued (redirect)", list(scan_metrics.values())),
        )
        dashboard.add_widgets(
            graph("API requests", [rest_api.metric_count(period=PERIOD), rest_api.metric_client_error(period=PERIOD),
                                   rest_api.metric_server_error(period=PERIOD)]),
            graph("API latency", [rest_api.metric_latency(period=PERIOD, statistic="p50"),
                                  rest_api.metric_latency(period=PERIOD, statistic="p99")]),
            graph("Scans queue", [scans_queue.metric_approximate_number_of_messages_visible(period=PERIOD)],
                  [scans_queue.metric_approximate_age_of_oldest_message(period=PERIOD)]),
        )
        dashboard.add_widgets(
            graph("Function errors", [fn.metric_errors(period=PERIOD, label=n) for n, fn in functions.items()]),
            graph("Function throttles", [fn.metric_throttles(period=PERIOD, label=n)
                                         for n, fn in functions.items()]),
            graph("Outbox stream (events)", [iterator_age], [failed_writes]),
        )
        dashboard.add_widgets(
            graph("DynamoDB capacity", [t.metric_consumed_read_capacity_units(period=PERIOD, label=f"{n} read")
                                        for n, t in tables.items()]
                  + [t.metric_consumed_write_capacity_units(period=PERIOD, label=f"{n} write")
                     for n, t in tables.items()]),
            graph("DynamoDB throttles",
                  [t.metric(m, period=PERIOD, statistic="Sum", label=f"{n} {m}") for n, t in tables.items()
                   for m in ("ReadThrottleEvents", "WriteThrottleEvents")]),
            graph("Dead-letter queues", [q.metric_approximate_number_of_messages_visible(period=PERIOD, label=n)
                                         for n, q in dlqs.items()]),
        )
        return dashboard
