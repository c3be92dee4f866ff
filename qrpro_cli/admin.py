"""`qrpro admin ...`: the dashboard's stand-in (accounts, plans, teams, keys).

Talks to the running local stack through the connection file in
``--data-dir``, or to a deployed table with ``--table`` and the usual AWS
credentials. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, get_args

from botocore.exceptions import ClientError

from qrpro.domain.plans import PlanName, PlanStatus
from qrpro_cli.local import read_connection


def stack_outputs(stack: str) -> dict[str, str]:
    import boto3

    from qrpro_cli.engines import StackError

    try:
        found = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as err:
        raise StackError(f"no stack {stack!r}: {err.response['Error'].get('Message', '')}") from err
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def connect(args: argparse.Namespace) -> None:
    """Point this process's boto3 clients at the right table (and, with
    ``--stack``, learn the usage plans that customer keys are attached to)."""
    args.usage_plans, args.outputs = None, {}
    if args.stack:
        outputs = args.outputs = stack_outputs(args.stack)
        wanted = ["TableName", *(f"UsagePlan{plan.title()}Id" for plan in ("business", "team", "agency"))]
        missing = [name for name in wanted if name not in outputs]
        if missing:
            from qrpro_cli.engines import StackError

            raise StackError(f"stack {args.stack!r} has no output {', '.join(missing)}: is it a QR Pro stack?")
        os.environ["TABLE_NAME"] = outputs["TableName"]
        args.usage_plans = {plan: outputs[f"UsagePlan{plan.title()}Id"] for plan in ("business", "team", "agency")}
        return
    if args.table:
        os.environ["TABLE_NAME"] = args.table
        return
    info = read_connection(Path(args.data_dir))
    os.environ.update({
        "TABLE_NAME": info["table"],
        "IDEMPOTENCY_TABLE_NAME": info["idempotency_table"],
        "AWS_ENDPOINT_URL_DYNAMODB": info["endpoints"]["dynamodb"],
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": info["endpoints"]["dynamodb"],
        "AWS_ENDPOINT_URL_S3": info["endpoints"]["moto"],
        "AWS_ENDPOINT_URL_SQS": info["endpoints"]["moto"],
        "AWS_ENDPOINT_URL_SES": info["endpoints"]["moto"],
        "AWS_ENDPOINT_URL_API_GATEWAY": info["endpoints"]["moto"],
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": info.get("region", "us-east-1"),
        "SCANS_QUEUE_URL": info["queues"]["scans"]["url"],
        "WEBHOOKS_QUEUE_URL": info["queues"]["webhooks"]["url"],
        "EXPORT_BUCKET": info["bucket"],
    })
    args.usage_plans = info.get("usage_plans") or None
    args.outputs = info.get("outputs") or {}


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.admin_command == "sync-usage-keys":
        if args.usage_plans is None:
            raise SystemExit("qrpro: sync-usage-keys needs --stack NAME (the deployed stack's usage plans) "
                             "or a local stack")
        return sync_usage_keys(args.usage_plans)
    if args.admin_command == "replay-failed-events":
        return replay_failed_events(args.outputs, apply=args.apply)
    return _run(args)


def replay_failed_events(outputs: dict[str, str], *, apply: bool) -> dict[str, Any]:
    """The outbox events of the failed-events bucket, fanned out again (docs/operations.md)."""
    from qrpro_cli import replay

    missing = [name for name in ("FailedEventsBucketName", "WebhooksQueueUrl") if name not in outputs]
    if missing:
        raise SystemExit(f"qrpro: replay-failed-events needs --stack NAME or a local stack (the stack's "
                         f"{' and '.join(missing)})")
    os.environ["WEBHOOKS_QUEUE_URL"] = outputs["WebhooksQueueUrl"]
    return replay.replay(outputs["FailedEventsBucketName"], apply=apply, now=int(time.time()))


def sync_usage_keys(plans: dict[str, str]) -> dict[str, Any]:
    """The repair tool: every user's keys on the right plan, revoked keys' gateway keys deleted.
    (The stack's stream consumer does this as the table changes: docs/deploy.md.)"""
    from qrpro.data import usage_keys as uk

    users = list(uk.all_user_ids())
    report = [r for u in users for r in uk.sync_user(u, plans)]
    return {"users": len(users), "keys": len(report),
            "changed": [r for r in report if r.get("change")],
            "on_fallback": [r for r in report if r.get("error")],
            "pruned": uk.prune()}


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from qrpro.data import accounts
    from qrpro.domain.scope import team_scope, user_scope
    from qrpro.services import keys

    now = int(time.time())
    cmd = args.admin_command
    if cmd == "create-account":
        user_id = accounts.create_account(args.email, args.plan, now)
        key_id, token = keys.create(user_id, "default", now)
        return {"user_id": user_id, "key_id": key_id, "api_key": token}
    if cmd == "create-key":
        key_id, token = keys.create(args.user_id, args.label, now)
        return {"key_id": key_id, "api_key": token}
    if cmd == "create-team":
        return {"team_id": accounts.create_team(args.owner_id, args.name, args.plan, now)}
    if cmd == "add-member":
        accounts.add_member(args.team_id, args.user_id, args.role, now)
        return {"team_id": args.team_id, "user_id": args.user_id, "role": args.role}
    if cmd == "use-team":
        team_id = None if args.personal else args.team_id
        accounts.use_team(args.user_id, team_id)
        return {"user_id": args.user_id, "current_team_id": team_id}
    if cmd == "set-plan":
        scope = user_scope(args.user_id) if args.user_id else team_scope(args.team_id)
        item = accounts.set_plan(scope, args.plan, args.status, now)
        return {"id": item["id"], "type": item["type"], "plan": item["plan"], "plan_status": item["plan_status"]}
    if cmd == "run-expiry":
        from qrpro.services import expiry

        return expiry.run(args.now if args.now is not None else now)
    raise SystemExit(f"unknown admin command {cmd}")


class HelpWithDefaults(argparse.HelpFormatter):
    """Help that states each option's default, where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, "", False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def add_parser(sub: Any) -> None:
    fmt = HelpWithDefaults
    admin = sub.add_parser("admin", help="accounts, plans, teams and keys (the dashboard's stand-in)",
                           formatter_class=fmt)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--data-dir", default=".qrpro",
                       help="the running local stack's --data-dir (its connection file is there)")
    deployed = where.add_mutually_exclusive_group()
    deployed.add_argument("--table", help="a deployed table's name (uses your AWS credentials)")
    deployed.add_argument("--stack", help="a deployed stack's name (its table and usage plans; uses your AWS "
                                          "credentials)")
    cmds = admin.add_subparsers(dest="admin_command", required=True)

    p = cmds.add_parser("create-account", parents=[where], formatter_class=fmt,
                        help="a user with a plan and a first API key")
    p.add_argument("--email", required=True, help="the account's email")
    p.add_argument("--plan", required=True, choices=get_args(PlanName.__value__), help="the plan")
    p = cmds.add_parser("create-key", parents=[where], formatter_class=fmt, help="another API key for a user")
    p.add_argument("--user-id", required=True, help="the user's id (create-account prints it)")
    p.add_argument("--label", help="a name to tell keys apart")
    p = cmds.add_parser("create-team", parents=[where], formatter_class=fmt, help="a team owned by a user")
    p.add_argument("--owner-id", required=True, help="user id of the owner")
    p.add_argument("--name", required=True, help="the team's name")
    p.add_argument("--plan", required=True, choices=get_args(PlanName.__value__), help="the plan")
    p = cmds.add_parser("add-member", parents=[where], formatter_class=fmt,
                        help="add a user to a team (or change the role)")
    p.add_argument("--team-id", required=True, help="the team's id (create-team prints it)")
    p.add_argument("--user-id", required=True, help="the user's id (create-account prints it)")
    p.add_argument("--role", required=True, choices=["owner", "admin", "member"], help="role in the team")
    p = cmds.add_parser("use-team", parents=[where], formatter_class=fmt, help="switch a user's context")
    p.add_argument("--user-id", required=True, help="the user's id (create-account prints it)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--team-id", help="the team's id")
    g.add_argument("--personal", action="store_true", help="back to the user's own data")
    p = cmds.add_parser("set-plan", parents=[where], formatter_class=fmt,
                        help="change a user's or team's plan or status")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--user-id", help="the user's id")
    g.add_argument("--team-id", help="the team's id")
    p.add_argument("--plan", choices=get_args(PlanName.__value__), help="new plan (unchanged when absent)")
    p.add_argument("--status", choices=list(PlanStatus), help="plan status (unchanged when absent)")
    cmds.add_parser("sync-usage-keys", parents=[where], formatter_class=fmt,
                    help="with --stack: repair the gateway keys (every key on its usage plan, revoked keys' "
                         "gateway keys deleted); reports what it changed")
    p = cmds.add_parser("replay-failed-events", parents=[where], formatter_class=fmt,
                        help="with --stack or a local stack: fan out again the outbox events the events function "
                             "gave up on (the failed-events bucket); a dry run unless --apply")
    p.add_argument("--apply", action="store_true",
                   help="queue the deliveries (without it: only report what would be queued)")
    p = cmds.add_parser("run-expiry", parents=[where], formatter_class=fmt, help="run the scheduled expiry job now")
    p.add_argument("--now", type=int, help="unix seconds to run as (absent: the current time)")
