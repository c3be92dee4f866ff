"""`qrpro local`: the whole service on this machine.

DynamoDB Local + moto's server, the API and redirect functions behind a local
gateway on two ports, and the event sources (queues, schedules, the table's
stream) feeding the same handlers that run in Lambda.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from qrpro_cli import engines as eng
from qrpro_cli.function_url import FunctionUrlEdge
from qrpro_cli.gateway import API_ID, make_server
from qrpro_cli.provision import Provisioned, local_urls
from qrpro_cli.rest_api import RestApi
from qrpro_cli.runtime import FunctionSpec, Runtime
from qrpro_cli.template import ACCOUNT, REGION, Template, TemplateError, ref_target
from qrpro_cli.triggers import AsyncInvoke, ScheduleTrigger, SqsTrigger, StreamTrigger, Trigger, schedule_seconds
from qrpro_cli.usage import UsagePlans

log = logging.getLogger("qrpro.local")
CONNECTION_FILE = "local.json"
# Local-only settings handed to every function on top of its template environment.
LOCAL_ENV = {
    "ALLOW_LOOPBACK_WEBHOOKS": "true",  # webhooks to 127.0.0.1 (tests' receivers)
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}


@dataclass
class Options:
    api_port: int = 3000
    redirect_port: int = 3001
    data_dir: Path = Path(".qrpro")
    in_memory: bool = False
    workers: int = 2
    dynamodb_port: int = 0
    template: Path | None = None  # default: synthesized from infra/ on demand
    iam: bool = True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_connection(data_dir: Path) -> dict[str, Any]:
    path = data_dir / CONNECTION_FILE
    if not path.exists():
        raise eng.StackError(f"no local stack found in {data_dir}/: start one with `make local` (or "
                             "`.venv/bin/qrpro local`), or point at a running one with --data-dir DIR")
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise eng.StackError(f"{path} is unreadable; restart `qrpro local`") from err
    if not _pid_alive(int(info.get("pid", 0))):
        raise eng.StackError(f"the local stack of {data_dir}/ is not running (stale {CONNECTION_FILE}); "
                             "start it with `make local`, or point at a running one with --data-dir DIR")
    return info


def _check_data_dir(data_dir: Path) -> None:
    path = data_dir / CONNECTION_FILE
    if path.exists():
        try:
            pid = int(json.loads(path.read_text()).get("pid", 0))
        except (OSError, ValueError):
            pid = 0
        if pid and pid != os.getpid() and _pid_alive(pid):
            raise eng.StackError(f"a local stack already runs from {data_dir}/ (pid {pid}); stop it first")
        path.unlink()  # stale: left by a stack that did not shut down cleanly


def _permitted(template: Template, prov: Provisioned, function: str, principal: str, source_arn: str) -> bool:
    """Whether the function's resource-based policy (AWS::Lambda::Permission) lets ``principal`` invoke it
    from ``source_arn``: without one, AWS refuses the invocation."""
    from qrpro_cli.iam import like

    arn = prov.attr(function, "Arn")
    return any(
        prov.resolve(p["FunctionName"]) in (arn, prov.attr(function, None)) and p.get("Principal") == principal
        and p.get("Action") in ("lambda:InvokeFunction", "lambda:*")
        and ("SourceArn" not in p or like(str(prov.resolve(p["SourceArn"])), source_arn))
        for _, p in template.of_type("AWS::Lambda::Permission"))


def on_failure(props: dict[str, Any], prov: Provisioned) -> str | None:
    """The local ARN of an event source mapping's or EventInvokeConfig's on-failure destination."""
    dest = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    return str(prov.resolve(dest)) if dest else None


def stack_outputs(template: Template, prov: Provisioned) -> dict[str, str]:
    """The template's unconditional outputs with local values, as a deployed stack lists them."""
    out = {}
    for key, output in template.doc.get("Outputs", {}).items():
        if "Condition" not in output:
            try:
                out[key] = str(prov.resolve(output["Value"]))
            except TemplateError:
                continue
    return out


def restore_gateway_keys(table: str, plans: dict[str, str]) -> int:
    """moto keeps nothing across restarts, the data dir keeps the table: put the gateway keys the
    auth items record back into moto's API Gateway (same value, on their plan), as they are in AWS."""
    ddb, apigw = boto3.client("dynamodb"), boto3.client("apigateway")
    restored = 0
    for page in ddb.get_paginator("scan").paginate(
            TableName=table, FilterExpression="sk = :a AND attribute_exists(usage_key)",
            ExpressionAttributeValues={":a": {"S": "APIKEY"}}):
        for item in page.get("Items", []):
            key_id, user_id = item["key_id"]["S"], item["user_id"]["S"]
            created = apigw.create_api_key(name=f"qrpro/{table}/{key_id}", description=f"user {user_id}",
                                           value=item["usage_key"]["S"], enabled=True)
            plan = plans.get(item.get("usage_plan", {}).get("S", ""))
            if plan:
                apigw.create_usage_plan_key(usagePlanId=plan, keyId=created["id"], keyType="API_KEY")
            ddb.update_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]},
                            UpdateExpression="SET usage_key_id = :i", ExpressionAttributeValues={
                                ":i": {"S": created["id"]}})
            restored += 1
    return restored


class LocalStack:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.engines: eng.Engines | None = None
        self.runtime: Runtime | None = None
        self.servers: list[Any] = []
        self.triggers: list[Trigger] = []
        self.stopped = threading.Event()

    def start(self) -> dict[str, Any]:
        o = self.opts
        o.data_dir.mkdir(parents=True, exist_ok=True)
        _check_data_dir(o.data_dir)
        eng.ensure_port_free(o.api_port, "api")
        eng.ensure_port_free(o.redirect_port, "redirect")
        try:
            template = Template.load(o.template)
        except (OSError, ValueError, TemplateError) as err:
            raise eng.StackError(str(err)) from err
        db_dir = None if o.in_memory else o.data_dir / "dynamodb"
        self.engines = eng.start(db_dir, o.data_dir, o.dynamodb_port)
        api_url = f"http://127.0.0.1:{o.api_port}"
        redirect_url = f"http://127.0.0.1:{o.redirect_port}"
        os.environ.update(self.engines.env())  # the stack's own clients (provisioning, pollers)
        prov = Provisioned(template, None if o.in_memory else o.data_dir)
        functions = template.functions()
        stage = template.stage_name()

        def environment(fn_lid: str) -> dict[str, str]:
            fn = functions[fn_lid]
            env = {k: local_urls(str(v), api_url, redirect_url, stage)
                   for k, v in prov.resolve(fn.environment).items()}
            env.update(self.engines.env() if self.engines else {})
            env.update(LOCAL_ENV, AWS_LAMBDA_FUNCTION_NAME=prov.attr(fn_lid, None),
                       AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(fn.memory), AWS_REGION=os.environ["AWS_DEFAULT_REGION"],
                       POWERTOOLS_LOG_LEVEL=os.environ.get("QRPRO_LOG_LEVEL", "WARNING"),
                       PATH=os.environ.get("PATH", ""))
            env.update({k: v for k, v in os.environ.items() if k.startswith("QRPRO_")})  # local knobs
            return env

        specs: dict[str, FunctionSpec] = {}
        hash_keys = {}
        try:
            prov.create()
            for lid, props in template.of_type("AWS::DynamoDB::Table"):
                hash_keys[prov.attr(lid, None)] = next(k["AttributeName"] for k in props["KeySchema"]
                                                       if k["KeyType"] == "HASH")
            for lid, fn in functions.items():
                specs[fn.name] = FunctionSpec(
                    name=fn.name, handler=fn.handler, env=environment(lid), timeout=fn.timeout, memory=fn.memory,
                    role_name=prov.attr(fn.role, None), hash_keys=hash_keys,
                    policies=prov.resolve(template.role_policies(fn.role)) if o.iam else None)
        except TemplateError as err:
            raise eng.StackError(f"the template cannot run locally: {err}") from err
        # The SES identity is a prerequisite outside the stack (docs/deploy.md); locally it is verified here.
        for sender in {spec.env["SES_SENDER"] for spec in specs.values() if spec.env.get("SES_SENDER")}:
            boto3.client("ses").verify_email_identity(EmailAddress=sender)
        names = {lid: fn.name for lid, fn in functions.items()}
        self.runtime = Runtime(specs, workers=o.workers)
        self.runtime.warm("api", "authorizer", "redirect")

        authorizer = template.authorizer()
        routes = template.routes()
        usage = UsagePlans(API_ID, stage) if any(r.api_key_required for r in routes) else None
        api = RestApi(self.runtime, routes, names, names[authorizer[1]] if authorizer else None,
                      template.gateway_responses(), stage, usage)
        redirect_fn, headers, methods = template.redirect_edge()
        edge = FunctionUrlEdge(self.runtime, names[redirect_fn], headers, methods)
        invokers = [(r.function, "apigateway.amazonaws.com", api.method_arn(r.method.replace("ANY", "GET"), r.path))
                    for r in api.routes]
        invokers.append((redirect_fn, "cloudfront.amazonaws.com", f"arn:aws:cloudfront::{ACCOUNT}:distribution/"
                         f"{prov.attr(template.distribution(), None)}"))
        if authorizer:
            authorizer_arn = (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/authorizers/"
                              f"{prov.attr(authorizer[0], None)}")
            invokers.append((authorizer[1], "apigateway.amazonaws.com", authorizer_arn))
        for fn_lid, principal, source in invokers:
            if not _permitted(template, prov, fn_lid, principal, source):
                raise eng.StackError(f"{names[fn_lid]}: no AWS::Lambda::Permission lets {principal} invoke it "
                                     f"from {source}: AWS would refuse every such invocation")
        for port, gateway in ((o.api_port, api), (o.redirect_port, edge)):
            server = make_server("127.0.0.1", port, gateway)
            threading.Thread(target=server.serve_forever, name=f"http:{port}", daemon=True).start()
            self.servers.append(server)

        usage_plans = {k.removeprefix("USAGE_PLAN_").lower(): v for spec in specs.values()
                       for k, v in spec.env.items() if k.startswith("USAGE_PLAN_")}
        if not o.in_memory:
            restore_gateway_keys(specs["api"].env["TABLE_NAME"], usage_plans)
        self.triggers = self._triggers(template, prov, names, specs)
        for t in self.triggers:
            t.start()
        api_env = specs["api"].env
        info = {
            "pid": os.getpid(), "api_url": api_url, "redirect_url": redirect_url,
            "engine": self.engines.engine, "in_memory": o.in_memory, "iam": o.iam,
            "table": api_env["TABLE_NAME"], "idempotency_table": api_env["IDEMPOTENCY_TABLE_NAME"],
            "region": os.environ["AWS_DEFAULT_REGION"],
            "endpoints": {"dynamodb": self.engines.dynamodb_endpoint, "moto": self.engines.moto_endpoint},
            "queues": {k.removesuffix("_QUEUE_URL").lower(): {"url": v} for k, v in api_env.items()
                       if k.endswith("_QUEUE_URL")},
            "bucket": api_env.get("EXPORT_BUCKET"),
            "usage_plans": usage_plans,  # the stream consumer's (`qrpro admin sync-usage-keys` repairs locally)
            "outputs": stack_outputs(template, prov),  # what `describe-stacks` would show (`qrpro admin`)
        }
        path = o.data_dir / CONNECTION_FILE
        path.write_text(json.dumps(info, indent=2))
        return info

    def _triggers(self, template: Template, prov: Provisioned, names: dict[str, str],
                  specs: dict[str, FunctionSpec]) -> list[Trigger]:
        """The event source mappings and schedules of the template."""
        from qrpro_cli.iam import Check, Policy

        assert self.runtime is not None
        out: list[Trigger] = []
        for m in template.mappings():
            name = names[m.function]
            source = str(prov.resolve(m.source))
            dest = on_failure(m.props, prov)
            spec = specs[name]
            if ":sqs:" in source:
                needs = [Check(f"sqs:{a}", source) for a in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")]
            else:
                needs = [Check(f"dynamodb:{a}", source) for a in ("DescribeStream", "GetRecords", "GetShardIterator")]
                needs.append(Check("dynamodb:ListStreams", "*"))
            if dest and ":sqs:" in dest:
                needs.append(Check("sqs:SendMessage", dest))
            elif dest and ":s3:" in dest:
                needs += [Check("s3:PutObject", f"{dest}/x"), Check("s3:ListBucket", dest)]
            if spec.policies is not None:
                policy = Policy(spec.policies)
                missing = [f"{c.action} on {c.resource}" for c in needs if not policy.allows(c)]
                if missing:
                    raise eng.StackError(f"event source mapping {m.logical_id}: the {name} function's role lacks "
                                         f"{', '.join(missing)} (AWS refuses to create the mapping)")
            source_lid = ref_target(m.source)
            if ":sqs:" in source:
                out.append(SqsTrigger(self.runtime, name, prov.attr(source_lid, None), source, m.props))
            else:
                table = prov.attr(source_lid, None)
                checkpoint = None if self.opts.in_memory else self.opts.data_dir / f"stream-{m.logical_id}.json"
                out.append(StreamTrigger(self.runtime, name, prov.attr(m.function, "Arn"), table, m.props, dest,
                                         checkpoint))
        configs = template.async_configs()
        for rule in template.schedules():
            name = names[rule.function]
            rule_arn = prov.attr(rule.logical_id, "Arn")
            if not _permitted(template, prov, rule.function, "events.amazonaws.com", rule_arn):
                raise eng.StackError(f"schedule {rule.logical_id}: no AWS::Lambda::Permission lets EventBridge "
                                     f"invoke {name}")
            config = configs.get(rule.function, {})
            dest = on_failure(config, prov)
            if dest and ":sqs:" not in dest:
                raise eng.StackError(f"{name}: on-failure destination {dest}: only SQS queues are reproduced locally")
            policies = specs[name].policies
            # Lambda sends the invocation record with the function's role: AWS refuses the configuration without it.
            if dest and policies is not None and not Policy(policies).allows(Check("sqs:SendMessage", dest)):
                raise eng.StackError(f"the {name} function's role lacks sqs:SendMessage on its on-failure "
                                     f"destination {dest} (AWS refuses the EventInvokeConfig)")
            # QRPRO_SCHEDULE_<FUNCTION>_SECONDS runs a schedule more often (tests).
            override = os.environ.get(f"QRPRO_SCHEDULE_{name.upper()}_SECONDS")
            interval = float(override) if override else schedule_seconds(rule.expression)
            out.append(ScheduleTrigger(self.runtime, name, rule_arn, interval, rule.input,
                                       function_arn=prov.attr(rule.function, "Arn"),
                                       config=AsyncInvoke.from_config(config, dest)))
        return out

    def stop(self) -> None:
        for t in self.triggers:
            t.stop()
        for t in self.triggers:
            t.join(timeout=10)
        for server in self.servers:
            server.shutdown()
            server.server_close()
        if self.runtime is not None:
            self.runtime.close()
        if self.engines is not None:
            self.engines.stop()
        conn = self.opts.data_dir / CONNECTION_FILE
        if conn.exists():
            try:
                if json.loads(conn.read_text()).get("pid") == os.getpid():
                    conn.unlink()
            except (OSError, ValueError):
                pass
        self.stopped.set()


def run(opts: Options) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    # moto's server logs each call with the caller's address; boto3 logs chatter.
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stack = LocalStack(opts)
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        info = stack.start()
        print(f"QR Pro local stack ({info['engine']}, data in {opts.data_dir}/"
              f"{' in memory' if opts.in_memory else ''})", flush=True)
        print(f"API:       {info['api_url']}/api   (reference: {info['api_url']}/docs)", flush=True)
        print(f"Redirects: {info['redirect_url']}/{{shortcode}}", flush=True)
        print(f"Wiring:    the synthesized template ({'IAM roles enforced' if opts.iam else 'IAM NOT enforced'})",
              flush=True)
        print("Create an account: .venv/bin/qrpro admin create-account --email you@example.com --plan business "
              f"--data-dir {opts.data_dir}", flush=True)
        done.wait()
    finally:
        stack.stop()
    return 0
