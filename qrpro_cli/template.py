"""The synthesized CloudFormation template, read as the local stack's wiring.

`qrpro local` builds nothing from a list of its own: functions, tables,
queues, secrets, the bucket, event source mappings, schedules, the REST API's
routes and gateway responses, the redirect's origin request policy and every
function's IAM policy come from the template that `cdk synth` makes of
``infra/``. The template is synthesized on demand (without bundling the
Lambda assets, so it is quick and offline) into ``build/local/`` and reused
while ``infra/``, ``cdk.json`` and the CDK version are unchanged.

It is not written to ``cdk.out``: that folder is the deployable assembly of
``make synth`` (with built assets); an unbundled assembly there could be
deployed by mistake.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "local"
REGION, ACCOUNT, PARTITION = "us-east-1", "123456789012", "aws"  # moto's account: its ARNs match
STACK_ID = f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/QrPro/00000000-0000-4000-8000-000000000001"
HANDLER = re.compile(r"^lambdas\.(?P<name>\w+)\.handler\.handler$")

_SYNTH = """
import json, sys
from infra.app import STACK_NAME, build_app
context = json.loads(sys.argv[1])
app, _ = build_app(context, nag=False)
json.dump(app.synth().get_stack_by_name(STACK_NAME).template, open(sys.argv[2], "w"), indent=1)
"""


class TemplateError(Exception):
    """The template asks for something the local stack cannot reproduce."""


def _inputs_hash() -> str:
    h = hashlib.sha256()
    # infra/ reads the domain's vocabulary (error messages, shortcode alphabet...): part of the key too.
    inputs = [*sorted((ROOT / "infra").rglob("*.py")), *sorted((ROOT / "layers" / "qrpro" / "domain").glob("*.py"))]
    for path in [*inputs, ROOT / "cdk.json"]:
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(metadata.version("aws-cdk-lib").encode())
    return h.hexdigest()


def synthesized() -> Path:
    """The path of a template synthesized from the current ``infra/`` (synthesizing it if stale)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    key = _inputs_hash()
    out = CACHE / f"QrPro.{key[:16]}.template.json"
    if out.exists():
        return out
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers synthesize once
        if out.exists():
            return out
        context = json.loads((ROOT / "cdk.json").read_text())["context"]
        context["aws:cdk:bundling-stacks"] = []  # no asset builds: wiring only
        tmp = out.with_suffix(".tmp")
        env = dict(os.environ, CDK_OUTDIR=str(CACHE / "assembly"))
        done = subprocess.run([sys.executable, "-c", _SYNTH, json.dumps(context), str(tmp)], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise TemplateError(f"cdk synth of infra/ failed:\n{done.stderr[-3000:]}")
        for old in CACHE.glob("QrPro.*.template.json"):
            old.unlink()
        tmp.replace(out)
    return out


def strip_hash(logical_id: str) -> str:
    """``QueuesScansF86DFEDB`` -> ``QueuesScans``: a stable, readable local name."""
    return re.sub(r"[0-9A-F]{8}$", "", logical_id) or logical_id


@dataclass
class Function:
    logical_id: str
    name: str  # lambdas.<name>.handler.handler
    handler: str
    environment: dict[str, Any]
    timeout: int
    memory: int
    role: str  # logical id of its role


@dataclass
class Route:
    path: str  # "/api/{proxy+}"
    method: str  # "GET" or "ANY"
    function: str  # logical id of the integration's function
    authorized: bool
    api_key_required: bool


@dataclass
class Mapping:
    logical_id: str
    function: str  # logical id
    source: dict[str, Any]  # the EventSourceArn expression
    props: dict[str, Any] = field(default_factory=dict)


@dataclass
class Schedule:
    logical_id: str
    expression: str
    function: str
    input: str | None = None  # the target's constant JSON input: sent instead of the event


class Template:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.resources: dict[str, dict[str, Any]] = doc.get("Resources", {})

    @classmethod
    def load(cls, path: Path | None = None) -> Template:
        return cls(json.loads((path or synthesized()).read_text()))

    def of_type(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for lid, res in self.resources.items():
            if res["Type"] == kind:
                yield lid, res.get("Properties", {})

    def functions(self) -> dict[str, Function]:
        """Every function, by its logical id."""
        out = {}
        for lid, props in self.of_type("AWS::Lambda::Function"):
            m = HANDLER.match(props.get("Handler", ""))
            if m is None:
                raise TemplateError(f"{lid}: handler {props.get('Handler')!r} is not lambdas.<name>.handler.handler")
            out[lid] = Function(
                logical_id=lid, name=m["name"], handler=props["Handler"],
                environment=(props.get("Environment") or {}).get("Variables", {}),
                timeout=int(props.get("Timeout", 3)), memory=int(props.get("MemorySize", 128)),
                role=ref_target(props["Role"]))
        return out

    def function_by_name(self, name: str) -> Function:
        for fn in self.functions().values():
            if fn.name == name:
                return fn
        raise TemplateError(f"no function {name!r} in the template")

    def role_policies(self, role: str) -> list[dict[str, Any]]:
        """The policy documents attached to ``role`` (inline and AWS::IAM::Policy)."""
        res = self.resources[role]
        props = res.get("Properties", {})
        if props.get("ManagedPolicyArns"):
            raise TemplateError(f"{role}: managed policies cannot be evaluated locally; use inline statements")
        docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        for _, p in self.of_type("AWS::IAM::Policy"):
            if any(ref_target(r) == role for r in p.get("Roles", [])):
                docs.append(p["PolicyDocument"])
        return docs

    def mappings(self) -> list[Mapping]:
        out = []
        for lid, props in self.of_type("AWS::Lambda::EventSourceMapping"):
            if props.get("Enabled", True) is False:
                continue
            out.append(Mapping(lid, ref_target(props["FunctionName"]), props["EventSourceArn"], props))
        return out

    def schedules(self) -> list[Schedule]:
        out = []
        for lid, props in self.of_type("AWS::Events::Rule"):
            if "ScheduleExpression" not in props or props.get("State", "ENABLED") != "ENABLED":
                continue
            for target in props.get("Targets", []):
                fn = ref_target(target["Arn"])
                if self.resources.get(fn, {}).get("Type") != "AWS::Lambda::Function":
                    raise TemplateError(f"{lid}: only Lambda targets are run locally")
                out.append(Schedule(lid, props["ScheduleExpression"], fn, target.get("Input")))
        return out

    def async_configs(self) -> dict[str, dict[str, Any]]:
        """Each function's asynchronous-invocation settings (``AWS::Lambda::EventInvokeConfig``), by its logical id."""
        out = {}
        for lid, props in self.of_type("AWS::Lambda::EventInvokeConfig"):
            if props.get("Qualifier", "$LATEST") != "$LATEST":
                raise TemplateError(f"{lid}: only the unqualified function ($LATEST) runs locally")
            if (props.get("DestinationConfig") or {}).get("OnSuccess"):
                raise TemplateError(f"{lid}: on-success destinations are not reproduced locally")
            out[ref_target(props["FunctionName"])] = props
        return out

    # --- the REST API ---
    def routes(self) -> list[Route]:
        paths = self._resource_paths()
        out = []
        for _, props in self.of_type("AWS::ApiGateway::Method"):
            integration = props.get("Integration") or {}
            if integration.get("Type") != "AWS_PROXY":
                raise TemplateError(f"method {props['HttpMethod']} {paths.get(ref_target(props['ResourceId']))}: "
                                    "only Lambda proxy integrations are served locally")
            fn = next(ref_target(p) for p in _walk(integration["Uri"]) if _is_ref(p)
                      and self.resources.get(ref_target(p), {}).get("Type") == "AWS::Lambda::Function")
            resource = props["ResourceId"]
            path = "/" if "Fn::GetAtt" in resource else paths[ref_target(resource)]
            out.append(Route(path, props["HttpMethod"], fn, props.get("AuthorizationType") == "CUSTOM",
                             bool(props.get("ApiKeyRequired"))))
        return out

    def _resource_paths(self) -> dict[str, str]:
        parts = {lid: p for lid, p in self.of_type("AWS::ApiGateway::Resource")}

        def path(lid: str) -> str:
            parent = parts[lid]["ParentId"]
            base = "" if "Fn::GetAtt" in parent else path(ref_target(parent))
            return f"{base}/{parts[lid]['PathPart']}"

        return {lid: path(lid) for lid in parts}

    def authorizer(self) -> tuple[str, str] | None:
        """The REQUEST authorizer (logical id) and its function (logical id)."""
        for lid, props in self.of_type("AWS::ApiGateway::Authorizer"):
            if props.get("Type") != "REQUEST" or int(props.get("AuthorizerResultTtlInSeconds", 300)) != 0:
                raise TemplateError("only REQUEST authorizers without a result cache are served locally")
            return lid, next(ref_target(p) for p in _walk(props["AuthorizerUri"]) if _is_ref(p))
        return None

    def distribution(self) -> str:
        return next(lid for lid, _ in self.of_type("AWS::CloudFront::Distribution"))

    def gateway_responses(self) -> dict[str, tuple[int | None, str]]:
        """Response type -> (status, application/json template)."""
        out = {}
        for _, props in self.of_type("AWS::ApiGateway::GatewayResponse"):
            status = props.get("StatusCode")
            body = (props.get("ResponseTemplates") or {}).get("application/json", "")
            out[props["ResponseType"]] = (int(status) if status else None, body)
        return out

    def stage_name(self) -> str:
        return next((p["StageName"] for _, p in self.of_type("AWS::ApiGateway::Stage")), "prod")

    # --- the redirect edge: CloudFront -> function URL ---
    def redirect_edge(self) -> tuple[str, list[str], list[str]]:
        """(function logical id, forwarded headers, allowed methods) of the distribution's default behaviour."""
        urls = {lid: ref_target(p["TargetFunctionArn"]) for lid, p in self.of_type("AWS::Lambda::Url")}
        for _, props in self.of_type("AWS::CloudFront::Distribution"):
            config = props["DistributionConfig"]
            behaviour = config["DefaultCacheBehavior"]
            origin = next(o for o in config["Origins"] if o["Id"] == behaviour["TargetOriginId"])
            url = next((ref_target(p) for p in _walk(origin["DomainName"]) if _is_ref(p)
                        and ref_target(p) in urls), None)
            if url is None:
                raise TemplateError("the distribution's origin is not a Lambda function URL")
            policy = self.resources[ref_target(behaviour["OriginRequestPolicyId"])]["Properties"]
            headers = policy["OriginRequestPolicyConfig"]["HeadersConfig"]
            if headers.get("HeaderBehavior") != "whitelist":
                raise TemplateError("only a header allow-list origin request policy is reproduced locally")
            return urls[url], list(headers.get("Headers", [])), list(behaviour.get("AllowedMethods", ["GET", "HEAD"]))
        raise TemplateError("no CloudFront distribution in the template")


def _is_ref(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in ("Ref", "Fn::GetAtt")


def ref_target(node: Any) -> str:
    if isinstance(node, dict) and "Ref" in node:
        return str(node["Ref"])
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return str(node["Fn::GetAtt"][0])
    raise TemplateError(f"expected a Ref or Fn::GetAtt, got {node!r}")


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


Attr = Callable[[str, str | None], str]  # (logical id, attribute or None for Ref) -> local value


def resolve(node: Any, attr: Attr) -> Any:
    """Evaluate the intrinsic functions the template uses, with ``attr`` giving local physical values."""
    if isinstance(node, list):
        return [resolve(v, attr) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1 or not next(iter(node)).startswith(("Ref", "Fn::")):
        return {k: resolve(v, attr) for k, v in node.items()}
    fn, arg = next(iter(node.items()))
    if fn == "Ref":
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "QrPro", "AWS::StackId": STACK_ID}
        return pseudo[arg] if arg in pseudo else attr(arg, None)
    if fn == "Fn::GetAtt":
        lid, name = (arg.split(".", 1) if isinstance(arg, str) else arg)
        return attr(lid, name)
    if fn == "Fn::Join":
        sep, parts = arg
        return sep.join(str(resolve(p, attr)) for p in parts)
    if fn == "Fn::Select":
        index, items = arg
        return resolve(items, attr)[int(index)]
    if fn == "Fn::Split":
        sep, text = arg
        return str(resolve(text, attr)).split(sep)
    if fn == "Fn::Sub":
        text, values = (arg, {}) if isinstance(arg, str) else arg
        extra = {k: str(resolve(v, attr)) for k, v in values.items()}

        def sub(m: re.Match[str]) -> str:
            name = m[1]
            if name in extra:
                return extra[name]
            lid, _, att = name.partition(".")
            return str(resolve({"Fn::GetAtt": [lid, att]} if att else {"Ref": lid}, attr))

        return re.sub(r"\$\{([^}!][^}]*)\}", sub, text)
    raise TemplateError(f"intrinsic function {fn} is not supported locally")
