"""CloudWatch alarms: each function's errors and throttles, every DLQ's depth,
the API's 5XX. Alarm actions are left to the account (see docs/deploy.md)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, functions: Mapping[str, lambda_.IFunction],
                 dlqs: Mapping[str, sqs.IQueue], rest_api: apigw.RestApi) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cw.Alarm] = []
        gte = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        missing = cw.TreatMissingData.NOT_BREACHING

        for name, fn in functions.items():
            title = name.title()
            self.alarms.append(cw.Alarm(
                self, f"{title}Errors",
                alarm_description=f"QR Pro {name} function errors",
                metric=fn.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1, evaluation_periods=1, comparison_operator=gte, treat_missing_data=missing,
            ))
            self.alarms.append(cw.Alarm(
                self, f"{title}Throttles",
                alarm_description=f"QR Pro {name} function throttles",
                metric=fn.metric_throttles(period=PERIOD, statistic="Sum"),
                threshold=1, evaluation_periods=1, comparison_operator=gte, treat_missing_data=missing,
            ))

        for name, queue in dlqs.items():
            self.alarms.append(cw.Alarm(
                self, f"{name.title()}DlqDepth",
                alarm_description=f"QR Pro {name} dead-letter queue has messages",
                metric=queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                threshold=0, evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=missing,
            ))

        self.alarms.append(cw.Alarm(
            self, "Api5xx",
            alarm_description="QR Pro API 5XX responses",
            metric=rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
            threshold=1, evaluation_periods=1, comparison_operator=gte, treat_missing_data=missing,
        ))
