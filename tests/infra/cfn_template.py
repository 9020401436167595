"""Reading infra/template.yaml without AWS: a YAML loader for CloudFormation's
short-form tags (!Ref, !Sub, !GetAtt, ...) and a small resolver of the
intrinsic functions the template uses, with parameter values (the defaults
unless given).

Only what the template needs is resolved: Ref, Fn::Sub, Fn::Join, Fn::Split,
Fn::Select, Fn::If, Fn::Equals/Not/And/Or, Condition, AWS::NoValue. Fn::GetAtt
and a Ref to a resource resolve to a readable placeholder ("<Logical.Attr>").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
PERMISSIONS = ROOT / "shared" / "permissions.json"
METRICS = ROOT / "shared" / "metrics.json"

PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::StackName": "ec2-backup",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/ec2-backup/"
                    "1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6",
    "AWS::URLSuffix": "amazonaws.com",
}

NO_VALUE = object()


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Name value` into `{"Fn::Name": value}` (`!Ref` into
    `{"Ref": ...}`, `!Condition` into `{"Condition": ...}`, `!GetAtt a.b` into a list)."""


def _construct_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    with open(path) as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


class Resolver:
    def __init__(self, template: dict[str, Any], overrides: dict[str, str] | None = None,
                 pseudo: dict[str, str] | None = None):
        self.template = template
        self.pseudo = {**PSEUDO, **(pseudo or {})}
        self.params: dict[str, str] = {}
        for name, spec in template.get("Parameters", {}).items():
            self.params[name] = str(spec.get("Default", ""))
        for name, value in (overrides or {}).items():
            if name not in self.params:
                raise KeyError(f"no parameter {name} in the template")
            self.params[name] = value
        self.resources = template.get("Resources", {})
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.resources or self._sam_generated(name):
            return f"<{name}>"
        raise KeyError(f"Ref to unknown name {name}")

    def _sam_generated(self, name: str) -> bool:
        # SAM makes <Function><Event> rules and <Function>Role etc.
        return any(name.startswith(r) for r, spec in self.resources.items()
                   if spec.get("Type") == "AWS::Serverless::Function")

    def sub(self, text: str, variables: dict[str, Any] | None = None) -> str:
        variables = variables or {}

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and name.split(".", 1)[0] in self.resources:
                return f"<{name}>"
            value = self.ref(name)
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.resolve(v) for v in node]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self.sub(arg[0], arg[1])
                return self.sub(arg)
            if key == "Fn::Join":
                delimiter, items = arg
                return delimiter.join(str(v) for v in self.resolve(items))
            if key == "Fn::Split":
                delimiter, text = arg
                return str(self.resolve(text)).split(delimiter)
            if key == "Fn::Select":
                index, items = arg
                items = self.resolve(items)
                return items[int(self.resolve(index))]
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = self.resolve(arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(arg))
            if key == "Fn::Or":
                return any(self.resolve(arg))
            if key == "Fn::GetAtt":
                return "<" + ".".join(arg) + ">"
        out = {}
        for k, v in node.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out


def permissions() -> dict[str, Any]:
    return json.loads(PERMISSIONS.read_text())


def metrics() -> dict[str, Any]:
    return json.loads(METRICS.read_text())


def functions(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Package/binary name -> (logical id, resource) for every AWS::Serverless::Function."""
    out = {}
    for logical_id, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
            assert binary, f"{logical_id} has no Metadata.BuildProperties.Binary"
            out[binary] = (logical_id, res)
    return out


def _targets_event_bus(rule: dict[str, Any]) -> bool:
    """Whether an AWS::Events::Rule's one target is an event bus (an ARN written out, ending in
    event-bus/<name>), not one of the template's own resources."""
    target, = rule["Properties"]["Targets"]
    arn = target["Arn"]
    text = arn.get("Fn::Sub") if isinstance(arn, dict) else arn
    return isinstance(text, str) and ":event-bus/" in text


def event_rules(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(binary, rule's logical id, rule) for every EventBridge rule that reaches a function:
    those SAM makes from a function's Schedule and EventBridgeRule events (logical id
    <Function><Event>), and the AWS::Events::Rule resources whose one target is a function's
    work queue (the queue its SQS event reads). A rule is {"Pattern", "Schedule",
    "RetryPolicy", "DeadLetterConfig", "Via", "Condition"}: the pattern or the schedule, its
    target's retry and dead letters, the queue it goes through (None: straight to the
    function), and the template condition it exists under (None: always). Rules that forward
    to an event bus reach no function here: forwarding_rules lists them."""
    out = []
    queue_of = {}
    for binary, (logical_id, res) in functions(template).items():
        for name, event in res["Properties"].get("Events", {}).items():
            props = event["Properties"]
            if event["Type"] in ("Schedule", "EventBridgeRule"):
                out.append((binary, f"{logical_id}{name}", {
                    "Pattern": props.get("Pattern"), "Schedule": props.get("Schedule"),
                    "RetryPolicy": props.get("RetryPolicy"),
                    "DeadLetterConfig": props.get("DeadLetterConfig"), "Via": None,
                    "Condition": None}))
            elif event["Type"] == "SQS":
                queue_of[props["Queue"]["Fn::GetAtt"][0]] = binary
    for logical_id, res in template["Resources"].items():
        if res["Type"] != "AWS::Events::Rule" or _targets_event_bus(res):
            continue
        props = res["Properties"]
        target, = props["Targets"]
        queue = target["Arn"]["Fn::GetAtt"][0]
        assert queue in queue_of, f"{logical_id} targets {queue}, which is no function's work queue"
        out.append((queue_of[queue], logical_id, {
            "Pattern": props.get("EventPattern"), "Schedule": props.get("ScheduleExpression"),
            "RetryPolicy": target.get("RetryPolicy"),
            "DeadLetterConfig": target.get("DeadLetterConfig"), "Via": queue,
            "Condition": res.get("Condition")}))
    return out


def forwarding_rules(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(rule's logical id, rule) for every AWS::Events::Rule whose one target is an event bus
    (the home deployment's rule to the DR account's bus): {"Pattern", "Target" (the target
    as written: Arn, RoleArn, RetryPolicy, DeadLetterConfig), "Condition"}."""
    out = []
    for logical_id, res in template["Resources"].items():
        if res["Type"] == "AWS::Events::Rule" and _targets_event_bus(res):
            target, = res["Properties"]["Targets"]
            out.append((logical_id, {"Pattern": res["Properties"].get("EventPattern"), "Target": target,
                                     "Condition": res.get("Condition")}))
    return out


def exists(resolver: Resolver, spec: dict[str, Any]) -> bool:
    """Whether a resource, output or rule (anything with an optional "Condition") is in the stack
    the resolver's parameters make."""
    condition = spec.get("Condition")
    return condition is None or resolver.condition(condition)


def role_of(template: dict[str, Any], function: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    role = function["Properties"]["Role"]
    assert "Fn::GetAtt" in role and role["Fn::GetAtt"][1] == "Arn", role
    name = role["Fn::GetAtt"][0]
    return name, template["Resources"][name]


def policy_statements(resolver: Resolver, role: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of the role's inline policies, resolved; JSON-string documents parsed."""
    props = resolver.resolve(role["Properties"])
    statements = []
    for policy in props.get("Policies", []):
        statements.extend(document_statements(policy["PolicyDocument"]))
    return statements


def document_statements(doc: Any) -> list[dict[str, Any]]:
    """The statements of a resolved policy document (a JSON string is parsed)."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    stmts = doc["Statement"]
    return stmts if isinstance(stmts, list) else [stmts]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------- CloudWatch

def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm's properties watch, each as {"namespace", "name", "dimensions"
    (name -> value)}: the alarm's own MetricName, or each Metrics[].MetricStat.Metric of a
    metric math alarm. Values stay as they are (resolve the alarm first to compare them)."""
    if "MetricName" in alarm:
        metrics = [{"Namespace": alarm.get("Namespace"), "MetricName": alarm["MetricName"],
                    "Dimensions": alarm.get("Dimensions", [])}]
    else:
        metrics = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q]
    return [{"namespace": m.get("Namespace"), "name": m["MetricName"],
             "dimensions": {d["Name"]: d["Value"] for d in m.get("Dimensions", [])}}
            for m in metrics]


SEARCH = re.compile(r"SEARCH\(\s*'([^']*)'")
SCHEMA = re.compile(r"^\s*\{([^}]*)\}(.*)$", re.S)
TERM = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def search_metrics(expression: str) -> list[dict[str, Any]]:
    """The metrics of each SEARCH(...) in a metric math expression, as alarm_metrics gives
    them: the schema's namespace and dimension names, the name from MetricName="...", and the
    dimension values the search pins with Name="value" (None where it leaves one open). A
    search without a schema or a MetricName term gives name None: it cannot be checked."""
    out = []
    for query in SEARCH.findall(expression):
        schema = SCHEMA.match(query)
        if not schema:
            out.append({"namespace": None, "name": None, "dimensions": {}})
            continue
        parts = [p.strip().strip('"') for p in schema.group(1).split(",")]
        terms = dict(TERM.findall(schema.group(2)))
        out.append({"namespace": parts[0], "name": terms.get("MetricName"),
                    "dimensions": {d: terms.get(d) for d in parts[1:]}})
    return out


def widget_metrics(widget: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics a dashboard widget shows: each row of properties.metrics, either
    [namespace, name, dim, value, ..., {options}] ("." repeats the row above) or an
    expression (its SEARCHes)."""
    out, previous = [], []
    for row in widget.get("properties", {}).get("metrics", []):
        items = [i for i in row if not isinstance(i, dict)]
        options = [i for i in row if isinstance(i, dict)]
        if not items:
            for o in options:
                out.extend(search_metrics(o.get("expression", "")))
            continue
        items = [previous[i] if v == "." and i < len(previous) else v for i, v in enumerate(items)]
        previous = items
        namespace, name, rest = items[0], items[1], items[2:]
        out.append({"namespace": namespace, "name": name,
                    "dimensions": dict(zip(rest[0::2], rest[1::2]))})
    return out
