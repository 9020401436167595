"""infra/template.yaml against the code: every function is a workspace binary,
gets every variable the config reads, and may call exactly the EC2 actions in
shared/permissions.json, under the conditions the tag contract sets; each function
but monitor has a work queue of its own, which it alone may send to and read,
set up as AWS advises for an event source mapping; drill's evidence bucket keeps
its evidence private, encrypted, versioned and beyond the stack's life; every
alarm and dashboard widget reads a metric that shared/metrics.json says some
function publishes, under that dimension set; every alarm tells the person on
call what to run first and where its runbook section is.

Run: .venv/bin/python -m pytest tests/infra -q
"""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from cfn_template import (
    ROOT,
    Resolver,
    alarm_metrics,
    as_list,
    document_statements,
    event_rules,
    exists,
    forwarding_rules,
    functions,
    load,
    metrics,
    permissions,
    policy_statements,
    role_of,
    search_metrics,
    widget_metrics,
)

TEMPLATE = load()
PERMS = permissions()
FUNCTIONS = functions(TEMPLATE)
GLOBALS = TEMPLATE["Globals"]["Function"]
RESOURCES = TEMPLATE["Resources"]
PARAMS = TEMPLATE["Parameters"]
METRICS = metrics()
RUNBOOK = ROOT / "docs" / "runbook.md"

# The actions each function creates backups with: CreateTags for tag-on-create
# is allowed only for these (ec2:CreateAction).
CREATE_ACTIONS = {
    "create-image": {"CreateImage"},
    "create-snapshot": {"CreateSnapshot"},
    "replicate": {"CopyImage", "CopySnapshot"},
    "expire": set(),
    "monitor": set(),
    # drill's throwaways: instances (and their volumes), volumes, its security group.
    "drill": {"RunInstances", "CreateVolume", "CreateSecurityGroup"},
}
# Functions that tag backups that already exist: only this deployment's, and only these keys
# (the condition on aws:TagKeys): replicate and expire keys of the tag contract, drill only
# the three that record a drill.
TAGS_OWN_BACKUPS = {"replicate", "expire", "drill"}


def own_backup_tag_keys(binary: str, prefix: str) -> dict:
    if binary == "drill":
        return {"ForAllValues:StringEquals": {"aws:TagKeys": [
            f"{prefix}:drilled-at", f"{prefix}:drill-result", f"{prefix}:restore-seconds"]}}
    return {"ForAllValues:StringLike": {"aws:TagKeys": [f"{prefix}:*"]}}


# Functions that may claim a snapshot no deployment manages (expire: the snapshots of its own
# expired AMIs that carry no tag of ours, before deleting them).
CLAIMS_UNMANAGED_SNAPSHOTS = {"expire"}
DESTRUCTIVE = {"ec2:DeregisterImage", "ec2:DeleteSnapshot", "ec2:TerminateInstances", "ec2:DeleteVolume"}
# Of those, what removes drill's throwaway restores: only what also carries a drill-of tag.
REMOVES_THROWAWAYS = {"ec2:TerminateInstances", "ec2:DeleteVolume"}
KMS_ACTIONS = {
    "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo",
}
# Who may use the CopyKmsKeys keys, and for what: replicate encrypts copies with them, drill
# restores from those copies (decrypts, never encrypts anything of its own).
KMS_USERS = {"replicate": KMS_ACTIONS, "drill": KMS_ACTIONS - {"kms:Encrypt"}}
KEY_A = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_B = "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
# Each variable of the config and the parameter that sets it.
VARIABLE_PARAMETERS = {
    "TAG_PREFIX": "TagPrefix",
    "DEPLOYMENT_NAME": "DeploymentName",
    "DEFAULT_INTERVAL": "DefaultInterval",
    "DEFAULT_RETENTION": "DefaultRetention",
    "COPY_TO_REGIONS": "CopyToRegions",
    "COPY_RETENTION": "CopyRetention",
    "COPY_KMS_KEYS": "CopyKmsKeys",
    "KEEP_LAST": "KeepLast",
    "DRY_RUN": "DryRun",
    "CLEANUP_REGIONS": "CleanupRegions",
    "METRICS_NAMESPACE": "MetricsNamespace",
    "COPY_GRACE": "CopyGrace",
    "PENDING_LIMIT": "PendingLimit",
    "DRILL_INTERVAL": "DrillInterval",
    "EC2_RATE_LIMITS": "Ec2RateLimits",
    "DR_ACCOUNT": "DrAccount",
    "SHARE_KMS_KEYS": "ShareKmsKeys",
    "SOURCE_ACCOUNTS": "SourceAccounts",
    "LOCK_MODE": "LockMode",
    "LOCK_COOLOFF_HOURS": "LockCoolOffHours",
}
# The variables only one function reads (shared/permissions.json function_environment) and
# what the template sets them to.
FUNCTION_VARIABLES = {
    "drill": {
        "EVIDENCE_BUCKET": {"Ref": "EvidenceBucket"},
        "DRILL_BATCH": {"Ref": "DrillBatch"},
        "DRILL_TIMEOUT": {"Ref": "DrillTimeout"},
        "DRILL_INSTANCE_TYPE": {"Ref": "DrillInstanceType"},
        "DRILL_SUBNETS": {"Ref": "DrillSubnets"},
        "DRILL_SECURITY_GROUPS": {"Ref": "DrillSecurityGroups"},
    },
}
# Each function's work queue (its WORK_QUEUE_URL) and whether the queue is FIFO; monitor
# has none.
WORK_QUEUES = {
    "create-image": ("CreateImageWorkQueue", True),
    "create-snapshot": ("CreateSnapshotWorkQueue", True),
    "replicate": ("ReplicateWorkQueue", False),
    "expire": ("ExpireWorkQueue", False),
    "drill": ("DrillWorkQueue", False),
}
# Variables whose value differs per function: set on a function of its own (WORK_QUEUE_URL on
# each with a work queue, EC2_RATE_SHARED_BY on those of SHARED_PACE), never in Globals, and
# without a parameter. shared/permissions.json lists them with the others
# once shared/src/config.rs reads them (VARIABLES).
PER_FUNCTION_VARIABLES = {"WORK_QUEUE_URL", "EC2_RATE_SHARED_BY"}
# The functions whose mapping runs several invocations at once in the normal course (a burst of
# events fills both of replicate's), so that each paces at its part of the share. expire's two
# overlap only when a schedule meets a continuation; the create functions' FIFO queues run one.
SHARED_PACE = {"replicate"}
# The actions an event source mapping needs on its queue (Lambda's SQS guide lists the first
# three); ChangeMessageVisibility lets the function hand a message back before its timeout.
SQS_RECEIVE = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
               "sqs:ChangeMessageVisibility"}
# Event types that SAM turns into EventBridge rules (the rest are event source mappings).
RULE_TYPES = ("Schedule", "EventBridgeRule")

# The isolated DR account: the same template deployed in a home account (DrAccount: share
# with the DR account) and in the DR account (SourceAccounts: a vault). The stack here is
# 123456789012 (cfn_template.PSEUDO); the home accounts and their keys are others.
DR_ACCOUNT = "444455556666"
SOURCE_ACCOUNTS = ["111122223333", "777788889999"]
SHARE_KEY = "arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-1234-5678-9abc-def012345678"
HOME = {"DrAccount": DR_ACCOUNT, "ShareKmsKeys": f"us-east-1={SHARE_KEY}"}
VAULT = {"SourceAccounts": ",".join(SOURCE_ACCOUNTS), "CopyKmsKeys": f"us-west-2={KEY_A}"}
DEPLOYMENTS = {"plain": {}, "home": HOME, "vault": VAULT, "home-and-vault": {**HOME, **VAULT}}
# The services whose calls shared/permissions.json lists per function.
CALLED = ("ec2:", "events:")
# What a function may call only in one kind of deployment (shared/permissions.json lists
# everything a function may call in any): the home replicate shares and announces, the vault
# replicate locks and protects, the vault expire lifts its own protection. Reading locks
# (DescribeLockedSnapshots) is allowed in every deployment.
HOME_ONLY = {"replicate": {"ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute", "events:PutEvents"}}
VAULT_ONLY = {"replicate": {"ec2:LockSnapshot", "ec2:EnableImageDeregistrationProtection"},
              "expire": {"ec2:DisableImageDeregistrationProtection"}}


def statements(function: str, **overrides: str) -> list[dict]:
    resolver = Resolver(TEMPLATE, overrides)
    _, role = role_of(TEMPLATE, FUNCTIONS[function][1])
    return policy_statements(resolver, role)


def allowed(stmts: list[dict], prefix: str) -> set[str]:
    return {a for s in stmts if s["Effect"] == "Allow"
            for a in as_list(s["Action"]) if a.startswith(prefix)}


def with_action(stmts: list[dict], action: str) -> list[dict]:
    return [s for s in stmts if action in as_list(s["Action"])]


# ------------------------------------------------------------------ functions

def test_one_function_per_package_in_permissions_json():
    assert set(FUNCTIONS) == set(PERMS["functions"])


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_function_builds_its_workspace_binary(binary):
    logical_id, res = FUNCTIONS[binary]
    props = {**GLOBALS, **res["Properties"]}
    assert res["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert props["Runtime"] == "provided.al2023"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "bootstrap"
    # CodeUri is relative to the template: the workspace root, where cargo
    # lambda build --bin <Binary> runs.
    root = (ROOT / "infra" / props["CodeUri"]).resolve()
    assert root == ROOT
    if not (root / "functions" / binary).is_dir():
        # replicate and expire are written on their own branches; until they
        # land, sam build would fail for them, and this says so.
        pytest.skip(f"functions/{binary} is not in the workspace yet")
    workspace = tomllib.loads((root / "Cargo.toml").read_text())
    assert f"functions/{binary}" in workspace["workspace"]["members"]
    package = tomllib.loads((root / "functions" / binary / "Cargo.toml").read_text())
    assert package["package"]["name"] == binary
    bins = package.get("bin", [{"name": binary}])
    assert binary in {b.get("name", binary) for b in bins}
    assert 128 <= props["MemorySize"] <= 1024
    assert 30 <= props["Timeout"] <= 900


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_every_variable_the_config_reads_is_set(binary):
    _, res = FUNCTIONS[binary]
    variables = dict(GLOBALS.get("Environment", {}).get("Variables", {}))
    variables.update(res["Properties"].get("Environment", {}).get("Variables", {}))
    # Per-function variables have their own test (test_work_queue_url_is_the_functions_own_queue).
    missing = [v for v in PERMS["environment"] if v not in variables and v not in PER_FUNCTION_VARIABLES]
    assert not missing, f"{binary}: not set by the template: {missing}"
    for variable, value in variables.items():
        if variable in VARIABLE_PARAMETERS:
            assert value == {"Ref": VARIABLE_PARAMETERS[variable]}, variable


def test_every_variable_has_its_parameter():
    assert set(VARIABLE_PARAMETERS) == set(PERMS["environment"]) - PER_FUNCTION_VARIABLES
    for parameter in VARIABLE_PARAMETERS.values():
        assert parameter in PARAMS


def test_per_function_variables_are_not_in_globals():
    assert not PER_FUNCTION_VARIABLES & set(GLOBALS["Environment"]["Variables"])
    assert not PER_FUNCTION_VARIABLES & set(VARIABLE_PARAMETERS)


@pytest.mark.parametrize("variable", sorted(PER_FUNCTION_VARIABLES))
def test_per_function_variables_are_read_by_the_config(variable):
    if variable not in PERMS["environment"]:
        # The functions' side (shared/src/config.rs VARIABLES, and with it
        # shared/permissions.json) is written on its own branch.
        pytest.skip(f"{variable} is not in shared/permissions.json's environment yet")
    assert variable in PERMS["environment"]


def test_function_variables_are_those_of_permissions_json():
    assert {f: sorted(v) for f, v in FUNCTION_VARIABLES.items()} == {
        f: sorted(v) for f, v in PERMS.get("function_environment", {}).items()}
    for variables in FUNCTION_VARIABLES.values():
        for value in variables.values():
            assert value["Ref"] in PARAMS or value["Ref"] in RESOURCES, value


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_function_variables_only_on_their_function(binary):
    """A variable one function reads is set on it (to its parameter, or the bucket), on no
    other function and not in Globals; a function sets nothing else of its own but
    WORK_QUEUE_URL and EC2_RATE_SHARED_BY."""
    variables = FUNCTIONS[binary][1]["Properties"].get("Environment", {}).get("Variables", {})
    own = FUNCTION_VARIABLES.get(binary, {})
    assert {v: variables.get(v) for v in own} == own
    assert set(variables) <= set(own) | PER_FUNCTION_VARIABLES, set(variables) - set(own)
    everyone = {v for vs in FUNCTION_VARIABLES.values() for v in vs}
    assert not everyone & set(GLOBALS["Environment"]["Variables"])
    assert not everyone & (set(VARIABLE_PARAMETERS) | PER_FUNCTION_VARIABLES)


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_work_queue_url_is_the_functions_own_queue(binary):
    variables = FUNCTIONS[binary][1]["Properties"].get("Environment", {}).get("Variables", {})
    if binary in WORK_QUEUES:
        assert variables["WORK_QUEUE_URL"] == {"Ref": WORK_QUEUES[binary][0]}
    else:
        assert "WORK_QUEUE_URL" not in variables


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_json_logs_into_its_own_log_group_with_retention(binary):
    _, res = FUNCTIONS[binary]
    logging = res["Properties"]["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    group = logging["LogGroup"]["Ref"]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    logs = [s for s in statements(binary) if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    assert logs and all(s["Resource"] == f"<{group}.Arn>" for s in logs)


# ------------------------------------------------------------------------ IAM

def called(stmts: list[dict]) -> set[str]:
    return set().union(*(allowed(stmts, service) for service in CALLED))


@pytest.mark.parametrize("kms", ["", f"us-west-2={KEY_A}"])
@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_actions_are_exactly_those_in_permissions_json(binary, kms):
    """A stack that is both home and vault allows each function exactly what
    shared/permissions.json lists (EC2 and EventBridge); the Rust tests hold the functions'
    calls to the same list."""
    stmts = statements(binary, **{**HOME, **VAULT, "CopyKmsKeys": kms})
    assert called(stmts) == set(PERMS["functions"][binary]), (
        f"{binary}: the template's actions differ from shared/permissions.json")
    assert all(a.split(":")[0] + ":" in CALLED for a in PERMS["functions"][binary])


@pytest.mark.parametrize("kind", sorted(DEPLOYMENTS))
@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_the_dr_actions_only_where_the_deployment_uses_them(binary, kind):
    """Sharing only in a home deployment (DrAccount set), locking and lifting protection only
    in a vault (SourceAccounts set): a plain deployment's roles are what they were."""
    overrides = DEPLOYMENTS[kind]
    want = set(PERMS["functions"][binary])
    if "DrAccount" not in overrides:
        want -= HOME_ONLY.get(binary, set())
    if "SourceAccounts" not in overrides:
        want -= VAULT_ONLY.get(binary, set())
    assert called(statements(binary, **overrides)) == want
    for only in (HOME_ONLY, VAULT_ONLY):
        assert only.get(binary, set()) <= set(PERMS["functions"][binary]), "the tables name listed actions"


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_no_wildcard_action_no_managed_policy(binary):
    logical_id, res = FUNCTIONS[binary]
    assert "Policies" not in res["Properties"], "policies belong on the function's own role"
    _, role = role_of(TEMPLATE, res)
    assert "ManagedPolicyArns" not in role["Properties"]
    for s in statements(binary, **HOME, **VAULT):
        assert s["Effect"] == "Allow"
        assert "NotAction" not in s and "NotResource" not in s
        for action in as_list(s["Action"]):
            assert "*" not in action, f"{binary}: wildcard action {action}"


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_only_describe_is_on_every_resource(binary):
    for s in statements(binary, **HOME, **VAULT):
        actions = as_list(s["Action"])
        if "*" in as_list(s["Resource"]):
            assert all(a.startswith("ec2:Describe") for a in actions), s
        if any(a.startswith("ec2:Describe") for a in actions):
            assert s["Resource"] == "*", "Describe* calls support no resource-level permissions"


@pytest.mark.parametrize("overrides", [{}, {"TagPrefix": "Snap", "DeploymentName": "prod-backup"}])
@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_destructive_actions_only_on_this_deployments_backups(binary, overrides):
    """Deregister and delete: only this deployment's backups. Terminate and delete a volume
    (drill's clean-up): only this deployment's throwaways, which also carry drill-of (a
    backup's source volume, or anyone's instance, carries none). tests/infra/test_iam_policy.py
    evaluates both request by request."""
    prefix = overrides.get("TagPrefix", PARAMS["TagPrefix"]["Default"])
    name = overrides.get("DeploymentName", PARAMS["DeploymentName"]["Default"])
    for s in statements(binary, **overrides, **HOME, **VAULT):
        actions = set(as_list(s["Action"]))
        if DESTRUCTIVE & actions:
            assert s["Condition"]["StringEquals"] == {f"aws:ResourceTag/{prefix}:managed-by": name}, s
        if REMOVES_THROWAWAYS & actions:
            assert actions <= REMOVES_THROWAWAYS, s
            assert s["Condition"] == {
                "StringEquals": {f"aws:ResourceTag/{prefix}:managed-by": name},
                "Null": {f"aws:ResourceTag/{prefix}:drill-of": "false"}}, s
            assert all(re.fullmatch(r"arn:aws:ec2:\*:123456789012:(instance|volume)/\*", r)
                       for r in as_list(s["Resource"])), s


@pytest.mark.parametrize("kind", ["plain", "home-and-vault"])
@pytest.mark.parametrize("overrides", [{}, {"TagPrefix": "Snap", "DeploymentName": "prod-backup"}])
@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_create_tags_only_on_create_or_on_own_backups(binary, overrides, kind):
    prefix = overrides.get("TagPrefix", PARAMS["TagPrefix"]["Default"])
    name = overrides.get("DeploymentName", PARAMS["DeploymentName"]["Default"])
    tagging = with_action(statements(binary, **overrides, **DEPLOYMENTS[kind]), "ec2:CreateTags")
    on_create, on_own, claims = set(), False, False
    for s in tagging:
        cond = s.get("Condition", {})
        equals = cond.get("StringEquals", {})
        if "ec2:CreateAction" in equals:
            on_create |= set(as_list(equals["ec2:CreateAction"]))
            assert len(as_list(s["Action"])) == 1, "the CreateAction condition would bind other actions too"
            if binary == "replicate":
                # a copy is made only as this deployment's (expire can always delete it); a
                # vault's copy of a shared backup too, which carries none of the source's tags
                assert equals[f"aws:RequestTag/{prefix}:managed-by"] == name, s
        elif f"aws:ResourceTag/{prefix}:managed-by" in equals:
            assert equals == {f"aws:ResourceTag/{prefix}:managed-by": name}
            # only keys of the tag contract (drill: only its three)
            assert cond == {"StringEquals": equals, **own_backup_tag_keys(binary, prefix)}
            assert all(r.endswith(("::image/*", "::snapshot/*")) for r in as_list(s["Resource"]))
            on_own = True
        elif f"aws:RequestTag/{prefix}:managed-by" in equals:
            # A claim: only on a snapshot no deployment manages, writing exactly our name and an
            # expiry (tests/infra/test_iam_policy.py evaluates it request by request).
            assert equals == {f"aws:RequestTag/{prefix}:managed-by": name}
            assert cond["Null"] == {f"aws:ResourceTag/{prefix}:managed-by": "true",
                                    f"aws:RequestTag/{prefix}:expires-at": "false"}
            assert cond["ForAllValues:StringEquals"] == {
                "aws:TagKeys": [f"{prefix}:managed-by", f"{prefix}:expires-at"]}
            assert set(cond) == {"StringEquals", "Null", "ForAllValues:StringEquals"}
            assert as_list(s["Resource"]) == ["arn:aws:ec2:*::snapshot/*"]
            claims = True
        else:
            pytest.fail(f"{binary}: CreateTags without a condition: {s}")
    assert on_create == CREATE_ACTIONS[binary]
    assert on_own == (binary in TAGS_OWN_BACKUPS)
    assert claims == (binary in CLAIMS_UNMANAGED_SNAPSHOTS)
    if binary == "expire":
        # expire tags the snapshots of its own images, nothing else
        own = [s for s in tagging if "aws:TagKeys" in str(s.get("Condition"))]
        assert all(as_list(s["Resource"]) == ["arn:aws:ec2:*::snapshot/*"] for s in own)
    if binary == "drill":
        # tags on create only on what it creates: never an image or a snapshot
        on_create_resources = [r for s in tagging if "ec2:CreateAction" in s.get("Condition", {}).get(
            "StringEquals", {}) for r in as_list(s["Resource"])]
        assert sorted(on_create_resources) == sorted(
            f"arn:aws:ec2:*:123456789012:{kind}/*" for kind in ("instance", "volume", "security-group"))


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_no_kms_without_copy_keys(binary):
    assert not allowed(statements(binary), "kms:")
    # a home deployment without share keys shares unencrypted backups only: no key either
    assert not allowed(statements(binary, DrAccount=DR_ACCOUNT), "kms:")


def kms_statements(stmts: list[dict]) -> list[dict]:
    return [s for s in stmts if any(a.startswith("kms:") for a in as_list(s["Action"]))]


def test_kms_for_sharing_only_on_the_share_keys_and_only_for_replicate():
    """The home replicate re-encrypts a backup the DR account could not use with the region's
    share key, through EC2 only (as with the copy keys); no other function touches it."""
    for binary in PERMS["functions"]:
        stmts = kms_statements(statements(binary, **HOME))
        if binary != "replicate":
            assert not stmts, binary
            continue
        assert allowed(stmts, "kms:") == KMS_ACTIONS
        for s in stmts:
            assert as_list(s["Resource"]) == [SHARE_KEY] * 5
            assert s["Condition"]["StringLike"] == {"kms:ViaService": "ec2.*.amazonaws.com"}
            if "kms:CreateGrant" in as_list(s["Action"]):
                assert s["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    # share keys without a DR account: nothing to share, no key
    assert not allowed(statements("replicate", ShareKmsKeys=HOME["ShareKmsKeys"]), "kms:")


def test_kms_in_a_vault_on_the_source_accounts_keys_only_for_replicate():
    """The vault replicate decrypts what the home accounts shared with their keys, through EC2
    only, only keys of SourceAccounts (aws:ResourceAccount), never to encrypt; drill restores
    the vault's own copies (the copy keys) and nothing shared."""
    for binary in PERMS["functions"]:
        source = [s for s in kms_statements(statements(binary, **VAULT))
                  if "aws:ResourceAccount" in s.get("Condition", {}).get("StringEquals", {})]
        if binary != "replicate":
            assert not source, binary
            continue
        assert allowed(source, "kms:") == KMS_ACTIONS - {"kms:Encrypt"}
        for s in source:
            assert as_list(s["Resource"]) == ["arn:aws:kms:*:*:key/*"]
            assert s["Condition"]["StringEquals"] == {"aws:ResourceAccount": SOURCE_ACCOUNTS}
            assert s["Condition"]["StringLike"] == {"kms:ViaService": "ec2.*.amazonaws.com"}
            if "kms:CreateGrant" in as_list(s["Action"]):
                assert s["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


@pytest.mark.parametrize("keys", [[KEY_A], [KEY_A, KEY_B], [KEY_A, KEY_B, KEY_A, KEY_B, KEY_A]])
def test_kms_only_for_replicate_and_drill_and_only_on_the_copy_keys(keys):
    value = ",".join(f"{k.split(':')[3]}={k}" for k in keys)
    assert re.fullmatch(PARAMS["CopyKmsKeys"]["AllowedPattern"], value)
    for binary in PERMS["functions"]:
        stmts = statements(binary, CopyKmsKeys=value)
        if binary not in KMS_USERS:
            assert not allowed(stmts, "kms:"), binary
            continue
        assert allowed(stmts, "kms:") == KMS_USERS[binary], binary
        for s in stmts:
            if any(a.startswith("kms:") for a in as_list(s["Action"])):
                assert set(as_list(s["Resource"])) == set(keys)
                assert s["Condition"]["StringLike"] == {"kms:ViaService": "ec2.*.amazonaws.com"}
                if "kms:CreateGrant" in as_list(s["Action"]):
                    assert s["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_copy_kms_keys_pattern_takes_at_most_five_key_arns():
    pattern = PARAMS["CopyKmsKeys"]["AllowedPattern"]
    pair = f"us-west-2={KEY_A}"
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(pattern, ",".join([pair] * 5))
    for bad in [",".join([pair] * 6), "us-west-2=alias/dr", "us-west-2=1234abcd-12ab",
                f"us-west-2 = {KEY_A}", KEY_A]:
        assert not re.fullmatch(pattern, bad), bad


def test_lambda_is_the_only_principal_of_the_roles():
    for binary in PERMS["functions"]:
        _, role = role_of(TEMPLATE, FUNCTIONS[binary][1])
        stmt, = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert stmt["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert stmt["Action"] == "sts:AssumeRole"


# ---------------------------------------------------------------- parameters

@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_is_described_and_constrained(name):
    spec = PARAMS[name]
    assert spec.get("Description", "").strip(), name
    if spec["Type"] == "String":
        assert "AllowedPattern" in spec or "AllowedValues" in spec, name
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], str(spec.get("Default", ""))), name


@pytest.mark.parametrize("name,good,bad", [
    ("DefaultInterval", ["24h", "90m", "14d", "2w", "3", "12H"], ["", "0d", "1y", "12 h", "-1d"]),
    ("DefaultRetention", ["7d", "1w"], ["", "0", "7days"]),
    ("CopyRetention", ["", "30d"], ["0d", "30 days"]),
    ("CopyToRegions", ["", "us-west-2", "us-west-2,eu-west-1", "us-west-2, eu-west-1", "us-gov-west-1"],
     ["us_west_2", "Mars", "us-west-2,", "US-WEST-2"]),
    ("CleanupRegions", ["", "ap-southeast-2"], ["ap-southeast"]),
    ("TagPrefix", ["backup", "Snap", "org/backup", "b.k-p_1"], ["", "aws:x", "AWS:backup", "a b", "x:y"]),
    ("DeploymentName", ["ec2-backup", "prod_backup.v2"], ["", "a b", "x/y"]),
    ("CreateImageSchedule", ["rate(1 hour)", "rate(30 minutes)", "cron(0 3 * * ? *)"],
     ["rate(0 hours)", "every hour", "rate(1 hour"]),
    ("AlarmEmail", ["", "ops@example.com"], ["ops", "ops@example"]),
    ("MonitorSchedule", ["rate(1 hour)", "rate(15 minutes)", "cron(5 * * * ? *)"], ["", "hourly"]),
    # The config's rules (shared/src/config.rs validate_namespace), and blank refused:
    # the functions would fall back to EC2Backup while the alarms watched the blank one.
    ("MetricsNamespace", ["EC2Backup", "Ops/EC2 Backup", "a.b-c_d/e#f:g", "x" * 255],
     ["", " ", "   ", "AWS/EC2", "AWS/", "ec2|backup", "x" * 256, "back\tup", "bäckup"]),
    ("CopyGrace", ["2h", "90m", "1d", "3"], ["", "0h", "2x", "1.5h", "2 h"]),
    ("PendingLimit", ["6h", "1d", "2w"], ["", "0", "-6h", "6hours"]),
    # shared/src/pacing.rs RateLimits::parse: known actions, rate above 0, whole burst 1 or more.
    ("DrillSchedule", ["rate(1 day)", "rate(12 hours)", "cron(0 3 * * ? *)"], ["", "daily", "rate(1 week)"]),
    ("DrillInterval", ["7d", "1w", "36h", "14"], ["", "0d", "7 d", "1y"]),
    ("DrillTimeout", ["30m", "1h", "90m"], ["", "0m", "30 minutes", "-30m"]),
    # core/src/drill/settings.rs validate_instance_type (with a letter first)
    ("DrillInstanceType", ["", "t4g.small", "m7i.large", "c6gn.16xlarge", "u-6tb1.metal", "mac2-m2pro.metal",
                           "c7i.metal-24xl"],
     ["t4g", "T4G.small", "t4g.small ", ".small", "t4g.", "t4g.small.x", "t4g.small,m7i.large"]),
    ("DrillSubnets", ["", "us-west-2=subnet-0123456789abcdef0", "us-west-2=subnet-01234567,eu-west-1=subnet-89abcdef"],
     ["subnet-0123456789abcdef0", "us-west-2=sg-0123456789abcdef0", "us-west-2=subnet-0123456789abcdef0,",
      "us-west-2 = subnet-01234567", "us-west-2=subnet-0123"]),
    ("DrillSecurityGroups", ["", "us-west-2=sg-0123456789abcdef0", "us-west-2=sg-01234567,eu-west-1=sg-89abcdef"],
     ["sg-0123456789abcdef0", "us-west-2=subnet-0123456789abcdef0", "us-west-2=sg-01234567, eu-west-1=sg-89abcdef"]),
    ("Ec2RateLimits", ["", "CreateImage=5/50", "CreateImage=5/50,CopyImage=0.5/20", " CreateTags = 8 / 80 ",
                       "DescribeImages=.5/1"],
     ["CreateImage", "CreateImage=5", "CreateImage=0/50", "CreateImage=0.0/5", "CreateImage=5/0",
      "CreateImage=5/2.5", "RunInstances=5/50", "CreateImage=5/50,", "createimage=5/50"]),
    # The config's checks of the contract (12-digit ids; its own account it refuses at cold
    # start, which a parameter cannot know): the template lets through no shape it refuses.
    ("DrAccount", ["", "444455556666", "000000000001"],
     ["44445555666", "4444555566667", "4444-5555-6666", " 444455556666", "444455556666,111122223333",
      "arn:aws:iam::444455556666:root"]),
    ("SourceAccounts", ["", "111122223333", "111122223333,777788889999", ",".join(["111122223333"] * 20)],
     ["111122223333,", ",111122223333", "111122223333, 777788889999", "11112222333", "111122223333;777788889999",
      ",".join(["111122223333"] * 21)]),
    ("ShareKmsKeys", ["", f"us-east-1={KEY_A}", f"us-east-1={KEY_A},eu-west-1={KEY_B}"],
     ["alias/aws/ebs", f"us-east-1=alias/dr", KEY_A, f"us-east-1 = {KEY_A}", ",".join([f"us-east-1={KEY_A}"] * 6)]),
])
def test_parameter_patterns_match_what_the_config_accepts(name, good, bad):
    pattern = PARAMS[name]["AllowedPattern"]
    for value in good:
        assert re.fullmatch(pattern, value), (name, value)
    for value in bad:
        assert not re.fullmatch(pattern, value), (name, value)


def test_no_function_reserves_concurrency():
    """Reserved concurrency below an SQS event source mapping's concurrency throttles the
    mapping's invocations, and throttled messages count receives until they are dead-lettered.
    The FIFO work queues serialise the create functions instead (the template says why)."""
    assert "ReservedConcurrentExecutions" not in GLOBALS
    for binary, (_, res) in FUNCTIONS.items():
        assert "ReservedConcurrentExecutions" not in res["Properties"], binary
    assert "SerializeInvocations" not in PARAMS
    assert "SerializeInvocations" not in TEMPLATE.get("Conditions", {})


def test_dry_run_and_keep_last():
    assert PARAMS["DryRun"]["AllowedValues"] == ["false", "true"]
    assert PARAMS["DryRun"]["Default"] == "false"
    assert PARAMS["KeepLast"]["Type"] == "Number" and PARAMS["KeepLast"]["MinValue"] == 0
    assert PARAMS["KeepLast"]["Default"] == 1


def test_drill_parameters_default_to_the_design():
    defaults = {name: PARAMS[name]["Default"] for name in (
        "DrillSchedule", "DrillInterval", "DrillBatch", "DrillTimeout", "DrillInstanceType",
        "DrillSubnets", "DrillSecurityGroups", "EvidenceRetentionDays")}
    assert defaults == {"DrillSchedule": "rate(1 day)", "DrillInterval": "7d", "DrillBatch": 10,
                        "DrillTimeout": "30m", "DrillInstanceType": "", "DrillSubnets": "",
                        "DrillSecurityGroups": "", "EvidenceRetentionDays": 400}
    batch = PARAMS["DrillBatch"]
    assert (batch["Type"], batch["MinValue"], batch["MaxValue"]) == ("Number", 1, 1000)
    retention = PARAMS["EvidenceRetentionDays"]
    assert retention["Type"] == "Number" and retention["MinValue"] >= 1
    assert retention["MaxValue"] >= retention["Default"]


# ------------------------------------------------------ events and failures

EXPECTED_SCHEDULES = {
    "create-image": "CreateImageSchedule",
    "create-snapshot": "CreateSnapshotSchedule",
    "replicate": "ReplicateSchedule",
    "expire": "ExpireSchedule",
    "monitor": "MonitorSchedule",
    "drill": "DrillSchedule",
}


RULES = event_rules(TEMPLATE)


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_schedule_and_rules_with_dead_letters(binary):
    _, res = FUNCTIONS[binary]
    events = res["Properties"]["Events"]
    schedules = [e for e in events.values() if e["Type"] == "Schedule"]
    assert [e["Properties"]["Schedule"] for e in schedules] == [{"Ref": EXPECTED_SCHEDULES[binary]}]
    for name, event in events.items():
        assert event["Type"] in (*RULE_TYPES, "SQS"), name
    rules = [(name, rule) for b, name, rule in RULES if b == binary]
    assert rules
    for name, rule in rules:
        # An event that cannot be delivered (to the function, or to its work queue) is kept.
        assert rule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}, name
        assert rule["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400


def test_replicates_events_go_through_its_work_queue():
    """AMI and snapshot events wait on replicate's queue and are handed over in batches (the
    mapping's concurrency bounds the invocations racing for CopyImage); the schedule invokes
    it straight."""
    via = {name: rule["Via"] for b, name, rule in RULES if b == "replicate"}
    assert via == {"ReplicateImageStateRule": "ReplicateWorkQueue",
                   "ReplicateSnapshotCreatedRule": "ReplicateWorkQueue",
                   # a vault's: what the home accounts share, like its own events
                   "ReplicateBackupSharedRule": "ReplicateWorkQueue",
                   "ReplicateSnapshotSharedRule": "ReplicateWorkQueue",
                   "ReplicateFunctionReconcile": None}
    vault_only = {name for b, name, rule in RULES if rule["Condition"]}
    assert vault_only == {"ReplicateBackupSharedRule", "ReplicateSnapshotSharedRule"}
    assert {RESOURCES[name]["Condition"] for name in vault_only} == {"HasSourceAccounts"}
    event, = sqs_events("replicate")
    # Lambda takes a batch above 10 from a standard queue only with a batching window.
    assert event["BatchSize"] == 100 and event["MaximumBatchingWindowInSeconds"] >= 1


def rule_arns(arns: list[str]) -> set[str]:
    """The rules' logical ids in resolved aws:SourceArn values ("<Rule.Arn>")."""
    out = set()
    for arn in as_list(arns):
        match = re.fullmatch(r"<(\w+)\.Arn>", arn)
        assert match, arn
        out.add(match.group(1))
    return out


@pytest.mark.parametrize("kind", sorted(DEPLOYMENTS))
def test_a_work_queue_takes_events_from_exactly_the_rules_that_target_it(kind):
    """EventBridge sends to a queue only where the queue's policy lets events.amazonaws.com
    do so; least privilege: only this stack's rules that target it (those the deployment
    has), over HTTPS."""
    resolver = Resolver(TEMPLATE, DEPLOYMENTS[kind])
    targets: dict[str, set[str]] = {}
    for _, name, rule in RULES:
        if rule["Via"] and exists(resolver, rule):
            targets.setdefault(rule["Via"], set()).add(name)
    assert targets, "no rule targets a work queue"
    policies = {res["Properties"]["Queues"][0]["Ref"]: resolver.resolve(res["Properties"]["PolicyDocument"])
                for res in RESOURCES.values() if res["Type"] == "AWS::SQS::QueuePolicy"}
    for queue, _ in WORK_QUEUES.values():
        if queue not in targets:
            assert queue not in policies, f"{queue} has a policy but no rule sends to it"
            continue
        statements = policies[queue]["Statement"]
        allow = [s for s in statements if s["Effect"] == "Allow"]
        assert len(allow) == 1, queue
        assert allow[0]["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow[0]["Action"] == "sqs:SendMessage"
        assert allow[0]["Resource"] == f"<{queue}.Arn>"
        assert rule_arns(allow[0]["Condition"]["ArnEquals"]["aws:SourceArn"]) == targets[queue]
        deny, = [s for s in statements if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("kind", sorted(DEPLOYMENTS))
def test_dead_letter_queue_accepts_exactly_the_rules(kind):
    """Every rule of the deployment keeps what it cannot deliver (the forwarding rule to the DR
    account too), and the queue takes dead letters from those rules only."""
    resolver = Resolver(TEMPLATE, DEPLOYMENTS[kind])
    rules = {name for _, name, rule in RULES if exists(resolver, rule)}
    rules |= {name for name, rule in forwarding_rules(TEMPLATE) if exists(resolver, rule)}
    policy = resolver.resolve(RESOURCES["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"])
    allow = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    sources = set()
    for s in allow:
        assert s["Principal"] == {"Service": "events.amazonaws.com"}
        assert (s["Action"], s["Resource"]) == ("sqs:SendMessage", "<DeadLetterQueue.Arn>")
        assert set(s["Condition"]) == {"ArnEquals"}
        sources |= rule_arns(s["Condition"]["ArnEquals"]["aws:SourceArn"])
    assert sources == rules


def test_failed_invocations_go_to_the_encrypted_dead_letter_queue():
    config = GLOBALS["EventInvokeConfig"]
    assert 0 <= config["MaximumRetryAttempts"] <= 2
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    assert RESOURCES["DeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    for binary in PERMS["functions"]:
        sends = with_action(statements(binary), "sqs:SendMessage")
        assert "<DeadLetterQueue.Arn>" in [s["Resource"] for s in sends], binary


def dead_letter_queues() -> set[str]:
    """Every queue that dead letters go to: the on-failure destination and each redrive target."""
    out = {GLOBALS["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]}
    for res in RESOURCES.values():
        if res["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in res["Properties"]:
            out.add(res["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0])
    return out


def test_alarms_on_errors_and_dead_letters_to_the_topic():
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    errors = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms
              if a.get("Namespace") == "AWS/Lambda" and a.get("MetricName") == "Errors"}
    assert errors == {logical_id for logical_id, _ in FUNCTIONS.values()}
    # one alarm on each queue that dead letters go to, as soon as it holds one
    depth = [a for a in alarms if a.get("Namespace") == "AWS/SQS"
             and a["MetricName"] == "ApproximateNumberOfMessagesVisible"]
    assert dead_letter_queues() == {"DeadLetterQueue", "FifoDeadLetterQueue"}
    watched = []
    for a in depth:
        dimension, = a["Dimensions"]
        assert dimension["Name"] == "QueueName" and dimension["Value"]["Fn::GetAtt"][1] == "QueueName"
        watched.append(dimension["Value"]["Fn::GetAtt"][0])
    assert sorted(watched) == sorted(dead_letter_queues())
    for a in depth:
        assert (a["Threshold"], a["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    sub = RESOURCES["AlarmEmailSubscription"]
    assert sub["Condition"] == "HasAlarmEmail"
    assert Resolver(TEMPLATE).condition("HasAlarmEmail") is False
    assert Resolver(TEMPLATE, {"AlarmEmail": "ops@example.com"}).condition("HasAlarmEmail") is True


def test_outputs_name_every_function_the_queue_and_the_topic():
    outputs = TEMPLATE["Outputs"]
    values = [o["Value"] for o in outputs.values()]
    for logical_id, _ in FUNCTIONS.values():
        assert {"Ref": logical_id} in values
        assert {"Fn::GetAtt": [logical_id, "Arn"]} in values
    assert {"Ref": "DeadLetterQueue"} in values
    assert {"Ref": "AlarmTopic"} in values
    for queue in [q for q, _ in WORK_QUEUES.values()] + ["FifoDeadLetterQueue"]:
        assert outputs[f"{queue}Url"]["Value"] == {"Ref": queue}
    assert outputs["EvidenceBucketName"]["Value"] == {"Ref": "EvidenceBucket"}
    log_groups = outputs["LogGroups"]["Value"]["Fn::Join"][1]
    assert sorted(g["Ref"] for g in log_groups) == sorted(
        res["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for _, res in FUNCTIONS.values())


# ---------------------------------------------------------------- work queues
# What AWS advises for an SQS queue that an event source mapping reads (Lambda Developer
# Guide, "Creating and configuring an Amazon SQS event source mapping" and "Understanding SQS
# retries"): a visibility timeout of at least six times the function's timeout, a redrive
# policy with maxReceiveCount at least 5; SQS: a FIFO queue's dead-letter queue is FIFO.

# Each message is a chunk of up to a few hundred resources, one per invocation; replicate's
# are a few copies each, and several fit in one invocation.
BATCH_SIZES = {"create-image": 1, "create-snapshot": 1, "replicate": 100, "expire": 1, "drill": 1}
# How old a work queue's oldest message may get before the alarm: replicate's wait on copy
# limits on purpose, the others' only for the invocations ahead of them.
AGE_THRESHOLDS = {"create-image": 2 * 3600, "create-snapshot": 2 * 3600, "replicate": 6 * 3600,
                  "expire": 2 * 3600, "drill": 2 * 3600}


def function_timeout(binary: str) -> int:
    return {**GLOBALS, **FUNCTIONS[binary][1]["Properties"]}["Timeout"]


def sqs_events(binary: str) -> list[dict]:
    events = FUNCTIONS[binary][1]["Properties"]["Events"]
    return [e["Properties"] for e in events.values() if e["Type"] == "SQS"]


def test_every_function_but_monitor_has_a_work_queue_of_its_own():
    assert set(WORK_QUEUES) == set(FUNCTIONS) - {"monitor"}
    queues = {logical_id for logical_id, res in RESOURCES.items() if res["Type"] == "AWS::SQS::Queue"}
    assert queues == {q for q, _ in WORK_QUEUES.values()} | dead_letter_queues()
    assert len({q for q, _ in WORK_QUEUES.values()}) == len(WORK_QUEUES)
    assert sqs_events("monitor") == []


# A sweep runs to its deadline and hands the rest on: the longest deadline Lambda gives.
# drill never waits long in an invocation: it starts restores and hands the checks on, each
# continuation delayed 30 s.
FUNCTION_TIMEOUTS = {"create-image": 900, "create-snapshot": 900, "replicate": 900, "expire": 900,
                     "drill": 300}


@pytest.mark.parametrize("binary", sorted(WORK_QUEUES))
def test_functions_with_a_work_queue_run_up_to_their_deadline(binary):
    assert function_timeout(binary) == FUNCTION_TIMEOUTS[binary]


@pytest.mark.parametrize("binary", sorted(WORK_QUEUES))
def test_work_queue_is_encrypted_and_redriven_to_a_dead_letter_queue_of_its_kind(binary):
    queue, fifo = WORK_QUEUES[binary]
    props = RESOURCES[queue]["Properties"]
    assert props["SqsManagedSseEnabled"] is True
    assert props.get("FifoQueue", False) is fifo
    # FIFO: the function sends in one message group; a body sent twice within SQS's
    # deduplication interval is delivered once.
    assert props.get("ContentBasedDeduplication", False) is fifo
    assert "DelaySeconds" not in props  # replicate delays per message, where it means to
    redrive = props["RedrivePolicy"]
    target, attribute = redrive["deadLetterTargetArn"]["Fn::GetAtt"]
    assert attribute == "Arn"
    assert target == ("FifoDeadLetterQueue" if fifo else "DeadLetterQueue")
    dead_letters = RESOURCES[target]["Properties"]
    assert dead_letters.get("FifoQueue", False) is fifo
    assert dead_letters["SqsManagedSseEnabled"] is True
    assert 5 <= redrive["maxReceiveCount"] <= 10
    # A standard queue's message keeps its first enqueue time in the dead-letter queue:
    # that queue keeps messages longer than the work queue.
    assert 4 * 86400 <= props["MessageRetentionPeriod"] < dead_letters["MessageRetentionPeriod"]


@pytest.mark.parametrize("binary", sorted(WORK_QUEUES))
def test_work_queue_visibility_fits_the_function_timeout(binary):
    """A standard queue: six timeouts leave Lambda time to retry a batch whose invocation was
    throttled; the batching window is spent with the messages received but not yet handed to
    the function. A FIFO queue has one message group: a message in flight holds back every
    sweep behind it, so a crashed invocation's message must show again soon after the
    timeout (a failed record is made visible at once by the function; none of these
    functions reserves concurrency, so its mapping is not throttled)."""
    queue, fifo = WORK_QUEUES[binary]
    props = RESOURCES[queue]["Properties"]
    event, = sqs_events(binary)
    window = event.get("MaximumBatchingWindowInSeconds", 0)
    timeout = function_timeout(binary)
    if fifo:
        assert timeout + 30 <= props["VisibilityTimeout"] <= timeout + 300
    else:
        assert props["VisibilityTimeout"] >= 6 * timeout + window
    assert props["VisibilityTimeout"] <= 43200  # SQS's longest, 12 hours


@pytest.mark.parametrize("binary", sorted(WORK_QUEUES))
def test_function_reads_its_own_work_queue_and_reports_batch_item_failures(binary):
    queue, fifo = WORK_QUEUES[binary]
    event, = sqs_events(binary)
    assert event["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event.get("Enabled", True) is True
    # Lambda deletes a message that a filter leaves out, unprocessed.
    assert "FilterCriteria" not in event
    assert event["BatchSize"] == BATCH_SIZES[binary]
    if event["BatchSize"] > 1:
        assert 1 <= event["MaximumBatchingWindowInSeconds"] <= 30, "a short window"
    else:
        assert "MaximumBatchingWindowInSeconds" not in event
    if fifo:
        # One message group: Lambda hands over its messages one batch at a time anyway.
        assert "ScalingConfig" not in event
    else:
        assert event["ScalingConfig"] == {"MaximumConcurrency": 2}, "the least Lambda allows"


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_invocations_that_run_at_once_share_the_pace(binary):
    """EC2_RATE_SHARED_BY is the mapping's MaximumConcurrency where invocations overlap, so that
    together they keep to EC2_RATE_LIMITS; unset (1) elsewhere."""
    variables = FUNCTIONS[binary][1]["Properties"].get("Environment", {}).get("Variables", {})
    if binary in SHARED_PACE:
        event, = sqs_events(binary)
        concurrency = event["ScalingConfig"]["MaximumConcurrency"]
        # Lambda's environment values are strings.
        assert variables["EC2_RATE_SHARED_BY"] == str(concurrency)
    else:
        assert "EC2_RATE_SHARED_BY" not in variables


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_sqs_only_on_its_own_queues(binary):
    """Least privilege: a role sends to the dead-letter queue (the on-failure destination
    sends with the function's role) and to its own work queue, and its event source mapping
    reads that queue; no role reaches another function's queue, nor a dead-letter queue's
    messages."""
    own = [f"<{WORK_QUEUES[binary][0]}.Arn>"] if binary in WORK_QUEUES else []
    sqs = [s for s in statements(binary, **HOME, **VAULT)
           if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    sends = [r for s in sqs if "sqs:SendMessage" in as_list(s["Action"]) for r in as_list(s["Resource"])]
    assert sorted(sends) == sorted(["<DeadLetterQueue.Arn>", *own])
    for s in sqs:
        actions = set(as_list(s["Action"]))
        assert actions in ({"sqs:SendMessage"}, SQS_RECEIVE), s
        assert "Condition" not in s
        if actions == SQS_RECEIVE:
            assert as_list(s["Resource"]) == own, s
    assert allowed(sqs, "sqs:") == {"sqs:SendMessage"} | (SQS_RECEIVE if own else set())


@pytest.mark.parametrize("binary", sorted(WORK_QUEUES))
def test_an_alarm_when_a_work_queue_falls_behind(binary):
    queue, _ = WORK_QUEUES[binary]
    ages = [a for a in alarms().values() if a.get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert len(ages) == len(WORK_QUEUES)
    alarm, = [a for a in ages if a["Dimensions"] == [{"Name": "QueueName", "Value": f"<{queue}.QueueName>"}]]
    assert (alarm["Namespace"], alarm["Statistic"]) == ("AWS/SQS", "Maximum")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (AGE_THRESHOLDS[binary], "GreaterThanThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"
    # What to look at first: this queue, and this function's mapping and log group.
    logical_id, res = FUNCTIONS[binary]
    log_group = res["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    for name in (queue, logical_id, log_group):
        assert f"<{name}>" in alarm["AlarmDescription"], name
    assert alarm["AlarmDescription"].endswith("docs/runbook.md#work-queue-falling-behind")


def test_every_checkov_skip_gives_its_reason():
    skips = []
    for logical_id, res in RESOURCES.items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
            assert len(skip.get("comment", "")) > 40, (logical_id, skip)
            skips.append(skip["id"])
    assert skips, "expected the documented skips"


def test_samconfig_example_passes_the_parameter_checks():
    config = tomllib.loads((ROOT / "infra" / "samconfig.example.toml").read_text())
    overrides = {}
    for item in config["default"]["deploy"]["parameters"]["parameter_overrides"]:
        name, value = item.split("=", 1)
        overrides[name] = value.strip('"')
    assert set(overrides) <= set(PARAMS)
    for name, value in overrides.items():
        spec = PARAMS[name]
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), name
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], name
    kms = allowed(statements("replicate", CopyKmsKeys=overrides["CopyKmsKeys"]), "kms:")
    assert kms == KMS_ACTIONS


def test_every_parameter_is_in_one_parameter_group():
    groups = TEMPLATE["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for g in groups for name in g["Parameters"]]
    assert sorted(grouped) == sorted(PARAMS), "each parameter in exactly one group"


# --------------------------------------------------------------------- monitor

def test_monitor_only_reads():
    """monitor's role: the four describes and the snapshot locks (a vault's figures read
    them), its own log group, and the dead-letter queue that the on-failure destination
    (Globals) sends to with the function's role; no create, copy, delete, deregister, lock or
    tag action, and no other service."""
    stmts = statements("monitor", CopyKmsKeys=f"us-west-2={KEY_A}")
    actions = {a for s in stmts for a in as_list(s["Action"])}
    assert actions == {"ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeImages",
                       "ec2:DescribeSnapshots", "ec2:DescribeLockedSnapshots", "logs:CreateLogStream",
                       "logs:PutLogEvents", "sqs:SendMessage"}
    for s in stmts:
        services = {a.split(":")[0] for a in as_list(s["Action"])}
        resource = {"ec2": ["*"], "logs": ["<MonitorLogGroup.Arn>"],
                    "sqs": ["<DeadLetterQueue.Arn>"]}
        assert len(services) == 1 and as_list(s["Resource"]) == resource[services.pop()], s
        assert "Condition" not in s
    for word in ("Create", "Delete", "Copy", "Deregister", "Tags", "Run", "Modify", "Lock", "Protection"):
        assert not [a for a in actions if a.startswith("ec2:") and not a.startswith("ec2:Describe")
                    and word in a], word


def test_monitor_runs_on_its_schedule_and_sees_the_deployments_settings():
    props = FUNCTIONS["monitor"][1]["Properties"]
    assert PARAMS["MonitorSchedule"]["Default"] == "rate(1 hour)"
    assert 60 <= props["Timeout"] <= 900
    assert "ReservedConcurrentExecutions" not in props
    for name in ("CopyGrace", "PendingLimit", "MetricsNamespace"):
        assert re.fullmatch(PARAMS[name]["AllowedPattern"], PARAMS[name]["Default"])
    assert PARAMS["MetricsNamespace"]["Default"] == METRICS["namespace"]
    assert (PARAMS["CopyGrace"]["Default"], PARAMS["PendingLimit"]["Default"]) == ("2h", "6h")


# ---------------------------------------------- metrics, alarms and dashboard

# Parameter values that appear nowhere else, so that a metric resolved with them shows
# whether its namespace and Deployment come from the parameters.
PROBE = {"MetricsNamespace": "Probe/Namespace 1", "DeploymentName": "probe-deployment"}


def emitted_under(name: str) -> dict[str, set[str]]:
    """Dimension set name -> the functions that publish metric `name` under it."""
    out: dict[str, set[str]] = {}
    for function, sets in METRICS["functions"].items():
        for dimension_set, names in sets.items():
            if name in names:
                out.setdefault(dimension_set, set()).add(function)
    return out


def metric_problems(metric: dict) -> list[str]:
    """What is wrong with one watched or shown metric (already resolved with PROBE): not in
    shared/metrics.json, not in the MetricsNamespace parameter's namespace, dimension names
    that are no set under which some function publishes it, or pinned to the wrong
    deployment or to a function that does not publish it there. AWS's own namespaces
    (AWS/Lambda, AWS/SQS) are not ours to check."""
    namespace, name, dims = metric["namespace"], metric["name"], metric["dimensions"]
    if isinstance(namespace, str) and namespace.startswith("AWS/"):
        return []
    label = f"{name} {sorted(dims)}"
    if namespace != PROBE["MetricsNamespace"]:
        return [f"{label}: namespace {namespace!r} is not the MetricsNamespace parameter"]
    if name not in METRICS["units"]:
        return [f"{label}: not in shared/metrics.json"]
    problems = []
    sets = emitted_under(name)
    matching = [s for s in sets if sorted(METRICS["dimensions"][s]) == sorted(dims)]
    if not matching:
        problems.append(f"{label}: no function publishes it under these dimensions "
                        f"(it is published under {sorted(sets)})")
    if dims.get("Deployment") != PROBE["DeploymentName"]:
        problems.append(f"{label}: Deployment is {dims.get('Deployment')!r}, not the DeploymentName parameter")
    function = dims.get("Function")
    if matching and function is not None and function not in sets[matching[0]]:
        problems.append(f"{label}: {function} does not publish it under {matching[0]}")
    return problems


def alarms(**overrides: str) -> dict[str, dict]:
    """The alarms of the stack these parameters make (the DR alarms only where their condition
    holds), resolved."""
    resolver = Resolver(TEMPLATE, overrides)
    return {logical_id: resolver.resolve(res["Properties"]) for logical_id, res in RESOURCES.items()
            if res["Type"] == "AWS::CloudWatch::Alarm" and exists(resolver, res)}


# A stack that is both home and vault has every alarm and every widget.
EVERYTHING = {**HOME, **VAULT}


def dashboard_widgets(**overrides: str) -> list[dict]:
    body = Resolver(TEMPLATE, overrides).resolve(RESOURCES["Dashboard"]["Properties"]["DashboardBody"])
    return json.loads(body)["widgets"]


def test_metric_problems_catch_a_metric_nobody_emits():
    """The check itself, on small fakes: it must fail what it is there to fail."""
    dims = [{"Name": "Deployment", "Value": {"Ref": "DeploymentName"}}]

    def problems(alarm: dict) -> list[str]:
        resolved = Resolver(TEMPLATE, PROBE).resolve(alarm)
        return [p for m in alarm_metrics(resolved) for p in metric_problems(m)]

    ours = {"Ref": "MetricsNamespace"}
    assert problems({"Namespace": ours, "MetricName": "CopiesMissing", "Dimensions": dims}) == []
    assert problems({"Namespace": ours, "MetricName": "BackupsExploded", "Dimensions": dims})
    # published, but not under these dimensions: replicate's copies are per function
    assert problems({"Namespace": ours, "MetricName": "CopiesStarted", "Dimensions": dims})
    # a namespace written out instead of the parameter
    assert problems({"Namespace": "EC2Backup", "MetricName": "Late", "Dimensions": dims})
    # another deployment's figures
    assert problems({"Namespace": ours, "MetricName": "Late",
                     "Dimensions": [{"Name": "Deployment", "Value": "other"}]})
    # the dimension set exists, but this function does not publish this metric under it
    by_function = dims + [{"Name": "Function", "Value": "create-image"}]
    assert problems({"Namespace": ours, "MetricName": "BackupsCreated", "Dimensions": by_function}) == []
    assert problems({"Namespace": ours, "MetricName": "SnapshotsDeleted", "Dimensions": by_function})
    # dry runs are never alarmed on: nobody publishes to an alarm under that set
    dry = by_function + [{"Name": "DryRun", "Value": "true"}]
    assert problems({"Namespace": ours, "MetricName": "BackupsCreated", "Dimensions": dry})
    # metric math: each MetricStat counts
    math = {"Metrics": [
        {"Id": "e", "Expression": "a + b"},
        {"Id": "a", "MetricStat": {"Metric": {"Namespace": ours, "MetricName": "Late", "Dimensions": dims}}},
        {"Id": "b", "MetricStat": {"Metric": {"Namespace": ours, "MetricName": "Lat", "Dimensions": dims}}},
    ]}
    assert len(problems(math)) == 1
    # SEARCH expressions in a widget
    widget = {"properties": {"metrics": [[{"expression":
        "SEARCH('{\"Probe/Namespace 1\",Deployment,Region} Deployment=\"probe-deployment\" "
        "MetricName=\"WorstRpo\"', 'Maximum', 3600)"}]]}}
    assert [p for m in widget_metrics(widget) for p in metric_problems(m)]
    widget["properties"]["metrics"][0][0]["expression"] = widget["properties"]["metrics"][0][0][
        "expression"].replace("WorstRpo", "WorstRpoSeconds")
    assert [p for m in widget_metrics(widget) for p in metric_problems(m)] == []


def test_search_metrics_reads_the_schema_and_the_terms():
    got = search_metrics("SEARCH('{\"A b\",Deployment,Function,Region} Deployment=\"d\" "
                         "Function=\"replicate\" MetricName=\"CopiesStarted\"', 'Sum', 3600)")
    assert got == [{"namespace": "A b", "name": "CopiesStarted",
                    "dimensions": {"Deployment": "d", "Function": "replicate", "Region": None}}]


def test_every_alarm_watches_a_metric_a_function_publishes():
    problems = []
    everything = alarms(**PROBE, **EVERYTHING)
    assert set(everything) == {n for n, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    for logical_id, alarm in everything.items():
        watched = alarm_metrics(alarm)
        assert watched, logical_id
        problems += [f"{logical_id}: {p}" for m in watched for p in metric_problems(m)]
    assert not problems, "\n".join(problems)


def test_every_dashboard_widget_shows_metrics_a_function_publishes():
    problems, shown = [], set()
    for widget in dashboard_widgets(**PROBE, **EVERYTHING):
        if widget["type"] != "metric":
            continue
        title = widget["properties"]["title"]
        assert widget["properties"]["region"] == "us-east-1", title
        found = widget_metrics(widget)
        assert found, f"{title}: no metric found"
        for m in found:
            assert m["name"], f"{title}: a SEARCH without schema or MetricName cannot be checked"
            shown.add(m["name"])
            problems += [f"{title}: {p}" for p in metric_problems(m)]
    assert not problems, "\n".join(problems)
    asked = {"BackupsCreated", "BackupsFailed", "CopiesStarted", "CopiesDeferred", "ImagesDeregistered",
             "SnapshotsDeleted", "DeletesFailed", "WorstRpoSeconds", "Late", "Throttles",
             "DrillsPassed", "DrillsFailed", "DrillsTimedOut", "RestoreSeconds", "NotDrilled",
             "NotShared", "WorstDrRpoSeconds", "Unlocked", "SharedNotCopied"}
    assert asked <= shown, asked - shown


@pytest.mark.parametrize("kind", sorted(DEPLOYMENTS))
def test_dashboard_explains_itself_and_is_named_in_the_outputs(kind):
    """In each kind of deployment: the text widget explains every metric widget there, and the
    alarm widget lists exactly the alarms the stack has (a DR alarm only where it exists)."""
    widgets = dashboard_widgets(**DEPLOYMENTS[kind])
    text = [w for w in widgets if w["type"] == "text"]
    assert len(text) == 1 and "docs/runbook.md" in text[0]["properties"]["markdown"]
    titles = [w["properties"]["title"] for w in widgets if w["type"] == "metric"]
    for title in titles:
        assert f"**{title}**" in text[0]["properties"]["markdown"], f"the text widget does not explain {title}"
    listed = next(w for w in widgets if w["type"] == "alarm")["properties"]["alarms"]
    assert sorted(listed) == sorted(f"<{a}.Arn>" for a in alarms(**DEPLOYMENTS[kind]))
    assert {"Ref": "Dashboard"} in [o["Value"] for o in TEMPLATE["Outputs"].values()]
    # Dashboards are global to the account: one per stack and region.
    assert RESOURCES["Dashboard"]["Properties"]["DashboardName"] == {"Fn::Sub": "${AWS::StackName}-${AWS::Region}"}


def monitor_alarm(metric: str) -> dict:
    found = [a for a in alarms(**EVERYTHING).values()
             if metric in {m["name"] for m in alarm_metrics(a)} and a.get("Namespace") != "AWS/Lambda"]
    assert len(found) == 1, metric
    return found[0]


@pytest.mark.parametrize("metrics_watched", [("Late", "WithoutBackup"), ("CopiesMissing",), ("PendingTooLong",),
                                             ("NotDrilled",), ("NotShared",), ("Unlocked",), ("SharedNotCopied",)])
def test_monitor_alarms_fire_after_two_runs_on_the_deployments_totals(metrics_watched):
    alarm = monitor_alarm(metrics_watched[0])
    watched = alarm_metrics(alarm)
    assert sorted(m["name"] for m in watched) == sorted(metrics_watched)
    assert all(m["dimensions"] == {"Deployment": "ec2-backup"} for m in watched)
    if len(metrics_watched) > 1:
        returned = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
        assert len(returned) == 1 and set(returned[0]["Expression"].replace("+", " ").split()) == {
            q["Id"] for q in alarm["Metrics"] if "MetricStat" in q}
        stats = [(q["MetricStat"]["Stat"], q["MetricStat"]["Period"]) for q in alarm["Metrics"] if "MetricStat" in q]
    else:
        stats = [(alarm["Statistic"], alarm["Period"])]
    assert set(stats) == {("Maximum", 3600)}
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (2, 2)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    # a gap is a monitor that did not run, not a count of 0 or of 1
    assert alarm["TreatMissingData"] == "missing"


def test_a_silent_monitor_is_reported_once_by_the_rpo_alarm():
    rpo = monitor_alarm("Late")
    assert rpo["InsufficientDataActions"] == ["<AlarmTopic>"]
    reporting = [a["AlarmDescription"] for a in alarms(**EVERYTHING).values() if "InsufficientDataActions" in a]
    assert reporting == [rpo["AlarmDescription"]]
    assert "INSUFFICIENT_DATA" in rpo["AlarmDescription"]


def test_sustained_throttling_alarm_sums_every_function():
    alarm = monitor_alarm("Throttles")
    watched = alarm_metrics(alarm)
    publishers = emitted_under("Throttles")["function"]
    assert sorted(m["dimensions"]["Function"] for m in watched) == sorted(publishers) == sorted(FUNCTIONS)
    for q in alarm["Metrics"]:
        if "MetricStat" in q:
            assert (q["MetricStat"]["Stat"], q["MetricStat"]["Period"], q["ReturnData"]) == ("Sum", 300, False)
    returned, = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    assert all(f"FILL({q['Id']}, 0)" in returned["Expression"] for q in alarm["Metrics"] if "MetricStat" in q)
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 3)
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] > 0
    assert alarm["TreatMissingData"] == "notBreaching"


# Each function's count of the resources it failed on (shared/metrics.json).
FAILURE_METRICS = {"create-image": "BackupsFailed", "create-snapshot": "BackupsFailed",
                   "replicate": "CopiesFailed", "expire": "DeletesFailed"}


def test_an_alarm_when_any_resource_failed_even_in_a_finished_record():
    """A work queue's record that failed for some resources is done, not an invocation error
    (replicate's events all come through its queue): the failure counts must alarm on their
    own, every function's, within 5 minutes."""
    found = [a for a in alarms().values()
             if "BackupsFailed" in {m["name"] for m in alarm_metrics(a)}]
    assert len(found) == 1
    alarm, = found
    watched = {(m["dimensions"]["Function"], m["name"]) for m in alarm_metrics(alarm)}
    assert watched == set(FAILURE_METRICS.items())
    for function, name in FAILURE_METRICS.items():
        assert function in emitted_under(name)["function"], (function, name)
    for q in alarm["Metrics"]:
        if "MetricStat" in q:
            assert (q["MetricStat"]["Stat"], q["MetricStat"]["Period"], q["ReturnData"]) == ("Sum", 300, False)
    returned, = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    assert all(f"FILL({q['Id']}, 0)" in returned["Expression"] for q in alarm["Metrics"] if "MetricStat" in q)
    assert (alarm["EvaluationPeriods"], alarm["Threshold"]) == (1, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"


def runbook_anchors() -> set[str]:
    """The anchors GitHub makes of the runbook's headings."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_alarm_says_what_to_run_first_and_links_its_runbook_section():
    anchors = runbook_anchors()
    # The longest names the parameters and CloudFormation allow: the description must still
    # fit in CloudWatch's 1024 characters, with the real log group names, queue URL and bucket.
    longest = Resolver(TEMPLATE, {"DeploymentName": "d" * 128, "TagPrefix": "p" * 64},
                       pseudo={"AWS::StackName": "s" * 128, "AWS::Region": "ap-southeast-2"})
    names = {f"<{logical_id}>": longest.resolve(res["Properties"]["LogGroupName"])
             for logical_id, res in RESOURCES.items() if res["Type"] == "AWS::Logs::LogGroup"}
    for logical_id, res in RESOURCES.items():
        if res["Type"] == "AWS::SQS::Queue":  # queue names: 80 characters at most
            queue = "q" * 75 + ".fifo" if res["Properties"].get("FifoQueue") else "q" * 80
            names[f"<{logical_id}>"] = "https://sqs.ap-southeast-2.amazonaws.com/123456789012/" + queue
            names[f"<{logical_id}.Arn>"] = "arn:aws:sqs:ap-southeast-2:123456789012:" + queue
        if res["Type"] == "AWS::Serverless::Function":  # function names: 64 at most
            names[f"<{logical_id}>"] = "f" * 64
        if res["Type"] == "AWS::S3::Bucket":  # bucket names: 63 at most
            names[f"<{logical_id}>"] = "b" * 63
    for logical_id, res in RESOURCES.items():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        description = Resolver(TEMPLATE).resolve(res["Properties"]["AlarmDescription"])
        links = re.findall(r"docs/runbook\.md#([\w-]+)", description)
        assert len(links) == 1 and links[0] in anchors, (logical_id, links)
        commands = re.findall(r"\b(?:ec2-backup status|aws [a-z0-9-]+ [a-z-]+|fields @timestamp)", description)
        assert commands, f"{logical_id}: names no command or query to run first"
        longest_description = longest.resolve(res["Properties"]["AlarmDescription"])
        for placeholder, name in names.items():
            longest_description = longest_description.replace(placeholder, name)
        assert "<" not in longest_description.replace("<rgn>", ""), longest_description
        assert len(longest_description) <= 1024, (logical_id, len(longest_description))


def test_the_asked_for_alarms_exist_and_go_to_the_topic():
    found = alarms(**EVERYTHING)
    for alarm in found.values():
        assert alarm["AlarmActions"] == ["<AlarmTopic>"]
        assert alarm["TreatMissingData"] in ("missing", "notBreaching"), "chosen, not defaulted"
    watched = {tuple(sorted(m["name"] for m in alarm_metrics(a))): logical_id for logical_id, a in found.items()}
    for metric_set in [("Late", "WithoutBackup"), ("CopiesMissing",), ("PendingTooLong",),
                       ("Throttles",) * len(FUNCTIONS), ("ApproximateNumberOfMessagesVisible",),
                       ("ApproximateAgeOfOldestMessage",), ("DrillsFailed", "DrillsTimedOut"),
                       ("NotDrilled",), ("NotShared",), ("WorstDrRpoSeconds",), ("Unlocked",),
                       ("SharedNotCopied",)]:
        assert metric_set in watched, metric_set
    errors = {a["Dimensions"][0]["Value"] for a in found.values() if a.get("MetricName") == "Errors"}
    assert {"<MonitorFunction>", "<DrillFunction>"} <= errors


# ----------------------------------------------------------------------- drill

def test_drill_failed_alarm_sums_failed_and_timed_out_restores_over_the_schedules_day():
    """A restore that fails or times out is a finding, not an invocation error: the run succeeds,
    so only drill's own counts say so. Summed over a day (the default schedule runs once a
    day), over 0 is an alarm; a day without data had no drill that failed."""
    found = [a for a in alarms().values() if "DrillsFailed" in {m["name"] for m in alarm_metrics(a)}]
    assert len(found) == 1
    alarm, = found
    watched = alarm_metrics(alarm)
    assert sorted(m["name"] for m in watched) == ["DrillsFailed", "DrillsTimedOut"]
    assert all(m["dimensions"] == {"Deployment": "ec2-backup", "Function": "drill"} for m in watched)
    day = 86400
    assert PARAMS["DrillSchedule"]["Default"] == "rate(1 day)"
    for q in alarm["Metrics"]:
        if "MetricStat" in q:
            assert (q["MetricStat"]["Stat"], q["MetricStat"]["Period"], q["ReturnData"]) == ("Sum", day, False)
    returned, = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    assert all(f"FILL({q['Id']}, 0)" in returned["Expression"] for q in alarm["Metrics"] if "MetricStat" in q)
    # CloudWatch takes at most a day of periods (EvaluationPeriods x Period).
    assert alarm["EvaluationPeriods"] == 1 and alarm.get("DatapointsToAlarm", 1) == 1
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"
    for name in ("DrillLogGroup", "EvidenceBucket"):
        assert f"<{name}>" in alarm["AlarmDescription"], name


def test_dashboard_shows_drills_restore_seconds_per_region_and_not_drilled():
    shown: dict[str, list[dict]] = {}
    for widget in dashboard_widgets():
        if widget["type"] == "metric":
            for m in widget_metrics(widget):
                shown.setdefault(m["name"], []).append(m["dimensions"])
    for name in ("DrillsPassed", "DrillsFailed", "DrillsTimedOut"):
        assert {"Deployment": "ec2-backup", "Function": "drill"} in shown[name], name
    assert {"Deployment": "ec2-backup", "Function": "drill", "Region": None} in shown["RestoreSeconds"]
    assert {"Deployment": "ec2-backup", "Region": None} in shown["NotDrilled"]


def test_drill_takes_the_common_memory_and_its_own_schedule():
    props = FUNCTIONS["drill"][1]["Properties"]
    assert "MemorySize" not in props, "the same memory as the others (Globals)"
    assert GLOBALS["Environment"]["Variables"]["DRILL_INTERVAL"] == {"Ref": "DrillInterval"}


EVIDENCE = RESOURCES["EvidenceBucket"]


def test_evidence_bucket_is_private_encrypted_versioned_and_outlives_the_stack():
    assert EVIDENCE["Type"] == "AWS::S3::Bucket"
    # An auditor asks for last year's drills: the evidence stays when the stack goes.
    assert (EVIDENCE["DeletionPolicy"], EVIDENCE["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = EVIDENCE["Properties"]
    assert "BucketName" not in props, "bucket names are global: CloudFormation makes a unique one"
    sse, = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    for public in ("AccessControl", "WebsiteConfiguration", "CorsConfiguration"):
        assert public not in props, public


def test_evidence_expires_after_the_retention_current_and_noncurrent():
    rules = EVIDENCE["Properties"]["LifecycleConfiguration"]["Rules"]
    assert all(r["Status"] == "Enabled" for r in rules)
    for r in rules:  # nothing moves evidence elsewhere or narrows a rule to part of the bucket
        assert not {"Transitions", "NoncurrentVersionTransitions", "Prefix", "Filter"} & set(r), r
    expiring, = [r for r in rules if "ExpirationInDays" in r or "NoncurrentVersionExpiration" in r]
    assert expiring["ExpirationInDays"] == {"Ref": "EvidenceRetentionDays"}
    assert expiring["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "EvidenceRetentionDays"}}
    assert not [r for r in rules if "ExpirationDate" in r]
    assert PARAMS["EvidenceRetentionDays"]["Default"] == 400


def test_evidence_bucket_takes_https_only():
    policy, = [res for res in RESOURCES.values() if res["Type"] == "AWS::S3::BucketPolicy"]
    assert policy["Properties"]["Bucket"] == {"Ref": "EvidenceBucket"}
    assert policy.get("DeletionPolicy") == "Retain"
    # Nothing is allowed here: who may read or write is the roles' business (IAM).
    deny, = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(Resolver(TEMPLATE).resolve(deny["Resource"])) == [
        "<EvidenceBucket.Arn>", "<EvidenceBucket.Arn>/*"]


@pytest.mark.parametrize("binary", sorted(PERMS["functions"]))
def test_only_drill_writes_to_s3_and_only_evidence_under_drills(binary):
    stmts = statements(binary, CopyKmsKeys=f"us-west-2={KEY_A}")
    s3 = [s for s in stmts if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    services = {a.split(":")[0] for s in stmts for a in as_list(s["Action"])}
    if binary != "drill":
        assert not s3
        return
    assert services == {"ec2", "logs", "sqs", "s3", "kms"}
    stmt, = s3
    assert as_list(stmt["Action"]) == ["s3:PutObject"]
    assert as_list(stmt["Resource"]) == ["arn:aws:s3:::<EvidenceBucket>/drills/*"]
    assert "Condition" not in stmt


# ------------------------------------------------------- isolated DR account

def test_dr_parameters_default_to_neither_home_nor_vault():
    """An existing stack updated to this template changes nothing until it is told: no DR
    account, no source accounts, governance locks with a day's cool-off when it is a vault."""
    defaults = {name: PARAMS[name]["Default"] for name in
                ("DrAccount", "ShareKmsKeys", "SourceAccounts", "LockMode", "LockCoolOffHours", "DrRpoAlarmHours")}
    assert defaults == {"DrAccount": "", "ShareKmsKeys": "", "SourceAccounts": "", "LockMode": "governance",
                        "LockCoolOffHours": 24, "DrRpoAlarmHours": 48}
    assert PARAMS["LockMode"]["AllowedValues"] == ["governance", "compliance", "none"]
    cool_off = PARAMS["LockCoolOffHours"]
    assert (cool_off["Type"], cool_off["MinValue"], cool_off["MaxValue"]) == ("Number", 1, 72)
    group, = [g for g in TEMPLATE["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
              if g["Label"]["default"] == "Isolated DR account"]
    assert group["Parameters"] == ["DrAccount", "ShareKmsKeys", "SourceAccounts", "LockMode", "LockCoolOffHours",
                                   "DrRpoAlarmHours"]
    hours = PARAMS["DrRpoAlarmHours"]
    assert (hours["Type"], hours["MinValue"]) == ("Number", 1) and hours["MaxValue"] >= hours["Default"]
    plain = Resolver(TEMPLATE)
    assert not any(plain.condition(c) for c in ("HasDrAccount", "HasShareKmsKeys", "HasSourceAccounts"))


def test_dr_conditions_follow_the_parameters():
    def conditions(**overrides):
        r = Resolver(TEMPLATE, overrides)
        return {c for c in ("HasDrAccount", "HasShareKmsKeys", "HasSourceAccounts") if r.condition(c)}

    assert conditions(**HOME) == {"HasDrAccount", "HasShareKmsKeys"}
    assert conditions(DrAccount=DR_ACCOUNT) == {"HasDrAccount"}
    # share keys mean nothing without a DR account to share with
    assert conditions(ShareKmsKeys=HOME["ShareKmsKeys"]) == set()
    assert conditions(**VAULT) == {"HasSourceAccounts"}


def dr_resources(kind: str) -> set[str]:
    resolver = Resolver(TEMPLATE, DEPLOYMENTS[kind])
    return {name for name, res in RESOURCES.items() if res.get("Condition") and exists(resolver, res)}


def test_each_kind_of_deployment_makes_its_own_resources_only():
    home = {"ShareForwardRule", "ShareForwardRole", "NotSharedAlarm"}
    vault = {"ReplicateBackupSharedRule", "ReplicateSnapshotSharedRule", "VaultEventBusPolicy",
             "DrRpoAlarm", "UnlockedAlarm", "SharedNotCopiedAlarm"}
    assert dr_resources("plain") == set()
    assert dr_resources("home") == home
    assert dr_resources("vault") == vault
    assert dr_resources("home-and-vault") == home | vault


def test_home_forwards_its_own_backup_shared_events_to_the_dr_accounts_bus():
    """Same region (a bus in another region is another route, not asked for), through a role of
    its own, retried and dead-lettered like every rule's target."""
    (name, rule), = forwarding_rules(TEMPLATE)
    assert (name, rule["Condition"]) == ("ShareForwardRule", "HasDrAccount")
    resolver = Resolver(TEMPLATE, HOME)
    assert resolver.resolve(rule["Pattern"]) == {
        "source": ["ec2-backup"], "detail-type": ["Backup Shared"], "account": ["123456789012"]}
    target = resolver.resolve(rule["Target"])
    assert target["Arn"] == f"arn:aws:events:us-east-1:{DR_ACCOUNT}:event-bus/default"
    assert target["RoleArn"] == "<ShareForwardRole.Arn>"
    assert target["DeadLetterConfig"] == {"Arn": "<DeadLetterQueue.Arn>"}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    assert "Input" not in target and "InputTransformer" not in target, "the event goes as it is"


def test_vault_rules_take_shares_from_the_source_accounts_only():
    resolver = Resolver(TEMPLATE, VAULT)
    patterns = {name: resolver.resolve(rule["Pattern"]) for _, name, rule in RULES
                if name in ("ReplicateBackupSharedRule", "ReplicateSnapshotSharedRule")}
    assert patterns["ReplicateBackupSharedRule"] == {
        "source": ["ec2-backup"], "detail-type": ["Backup Shared"], "account": SOURCE_ACCOUNTS}
    assert patterns["ReplicateSnapshotSharedRule"] == {
        "source": ["aws.ec2"], "detail-type": ["EBS Snapshot Notification"],
        "detail": {"event": ["shareSnapshot"], "result": ["succeeded"], "source": SOURCE_ACCOUNTS}}


def test_vault_bus_policy_admits_the_source_accounts_backup_shared_events():
    """One statement of its own (a statement id per stack), on the default bus, for
    SourceAccounts' PutEvents of ec2-backup's Backup Shared events; tests/infra/test_iam_policy.py
    evaluates it account by account."""
    props = Resolver(TEMPLATE, VAULT).resolve(RESOURCES["VaultEventBusPolicy"]["Properties"])
    assert props["EventBusName"] == "default"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", props["StatementId"])
    assert props["StatementId"].endswith("1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6")
    assert {"Action", "Principal", "Condition", "Policy"}.isdisjoint(props), "the Statement form only"
    s = props["Statement"]
    assert (s["Effect"], s["Action"]) == ("Allow", "events:PutEvents")
    assert s["Principal"] == {"AWS": SOURCE_ACCOUNTS}
    assert s["Resource"] == "arn:aws:events:us-east-1:123456789012:event-bus/default"
    assert s["Condition"] == {"ForAllValues:StringEquals": {"events:source": ["ec2-backup"]},
                              "StringEquals": {"events:detail-type": "Backup Shared"}}


def test_dr_outputs_tell_each_side_what_the_other_needs():
    home = {name: Resolver(TEMPLATE, HOME).resolve(o) for name, o in TEMPLATE["Outputs"].items()
            if o.get("Condition") == "HasDrAccount"}
    assert set(home) == {"ShareKeyPolicyStatements", "DrAccountEventBus"}
    assert home["DrAccountEventBus"]["Value"] == f"arn:aws:events:us-east-1:{DR_ACCOUNT}:event-bus/default"
    # The EBS guide's key policy for a shared snapshot's key: the DR account may use the key,
    # and create grants only for AWS resources.
    use, grant = json.loads(home["ShareKeyPolicyStatements"]["Value"])
    root = {"AWS": f"arn:aws:iam::{DR_ACCOUNT}:root"}
    assert (use["Effect"], use["Principal"], use["Resource"]) == ("Allow", root, "*")
    assert sorted(use["Action"]) == ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
    assert (grant["Effect"], grant["Principal"], grant["Action"], grant["Resource"]) == (
        "Allow", root, "kms:CreateGrant", "*")
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    vault = {name: Resolver(TEMPLATE, VAULT).resolve(o) for name, o in TEMPLATE["Outputs"].items()
             if o.get("Condition") == "HasSourceAccounts"}
    assert {name: o["Value"] for name, o in vault.items()} == {
        "VaultAccountId": "123456789012",
        "VaultEventBus": "arn:aws:events:us-east-1:123456789012:event-bus/default"}
    for output in [*home.values(), *vault.values()]:
        assert output["Description"].strip(), output


def samconfig_examples() -> dict:
    """The commented DR examples of infra/samconfig.example.toml, uncommented: from the first
    line that opens a commented table ("# [dr-") on, every "# " line is TOML."""
    lines = (ROOT / "infra" / "samconfig.example.toml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [dr-"))
    body = [line[2:] for line in lines[start:] if line.startswith("# ")]
    return tomllib.loads("\n".join(body))


@pytest.mark.parametrize("env", ["dr-home", "dr-vault"])
def test_samconfig_dr_examples_pass_the_parameter_checks(env):
    config = samconfig_examples()
    deploy = config[env]["deploy"]["parameters"]
    overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])
    overrides = {name: value.strip('"') for name, value in overrides.items()}
    for name, value in overrides.items():
        spec = PARAMS[name]
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), name
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], name
    resolver = Resolver(TEMPLATE, overrides)
    if env == "dr-home":
        assert resolver.condition("HasShareKmsKeys") and not resolver.condition("HasSourceAccounts")
    else:
        assert resolver.condition("HasSourceAccounts") and not resolver.condition("HasDrAccount")
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    # the two examples fit each other: the home shares with the vault's account, which lists it
    home = dict(i.split("=", 1) for i in config["dr-home"]["deploy"]["parameters"]["parameter_overrides"])
    vault = dict(i.split("=", 1) for i in config["dr-vault"]["deploy"]["parameters"]["parameter_overrides"])
    home_account = home["ShareKmsKeys"].split(":")[4]
    assert home_account in vault["SourceAccounts"].split(",")
    assert config["dr-home"]["deploy"]["parameters"]["region"] == config["dr-vault"]["deploy"]["parameters"]["region"]


def test_roles_fit_iams_inline_policy_limit_with_the_longest_parameters():
    """IAM refuses a role whose inline policies add up to more than 10,240 characters (white
    space not counted). The DR statements grow with SourceAccounts (the owners replicate may copy
    from, the accounts whose keys it may use) and the key lists: with the most of each the
    parameters allow, the longest names, and the real ARNs in place of the placeholders, every
    role still fits."""
    key = "arn:aws-us-gov:kms:ap-southeast-2:111122223333:key/" + "k" * 36
    keys = ",".join([f"ap-southeast-2={key}"] * 5)
    longest = {"DrAccount": DR_ACCOUNT, "ShareKmsKeys": keys, "CopyKmsKeys": keys,
               "SourceAccounts": ",".join(["111122223333"] * 20), "TagPrefix": "p" * 64,
               "DeploymentName": "d" * 128}
    assert re.fullmatch(PARAMS["SourceAccounts"]["AllowedPattern"], longest["SourceAccounts"])
    assert re.fullmatch(PARAMS["ShareKmsKeys"]["AllowedPattern"], keys)
    resolver = Resolver(TEMPLATE, longest, pseudo={"AWS::StackName": "s" * 128, "AWS::Region": "ap-southeast-2",
                                                   "AWS::Partition": "aws-us-gov"})
    real = {}
    for logical_id, res in RESOURCES.items():
        if res["Type"] == "AWS::Logs::LogGroup":
            real[f"<{logical_id}.Arn>"] = ("arn:aws-us-gov:logs:ap-southeast-2:123456789012:log-group:"
                                           + resolver.resolve(res["Properties"]["LogGroupName"]) + ":*")
        if res["Type"] == "AWS::SQS::Queue":
            real[f"<{logical_id}.Arn>"] = "arn:aws-us-gov:sqs:ap-southeast-2:123456789012:" + "q" * 80
        if res["Type"] == "AWS::S3::Bucket":
            real[f"<{logical_id}>"] = "b" * 63
    for binary, (_, res) in FUNCTIONS.items():
        _, role = role_of(TEMPLATE, res)
        size = 0
        for policy in resolver.resolve(role["Properties"])["Policies"]:
            text = json.dumps({"Version": "2012-10-17", "Statement": document_statements(policy["PolicyDocument"])},
                              separators=(",", ":"))
            for placeholder, value in real.items():
                text = text.replace(placeholder, value)
            assert "<" not in text, text
            size += len(text)
        assert size <= 10240, (binary, size)


def test_dr_rpo_alarm_reads_the_vaults_worst_in_hours_against_its_parameter():
    """WorstDrRpoSeconds over all source accounts (the vault set, [Deployment]) divided into
    hours, so that the threshold is DrRpoAlarmHours itself; like the other monitor alarms: the
    hourly maximum at two runs in a row, a gap is a monitor that did not run."""
    for hours in ("48", "7"):
        alarm = alarms(**VAULT, DrRpoAlarmHours=hours)["DrRpoAlarm"]
        watched, = alarm_metrics(alarm)
        assert (watched["name"], watched["dimensions"]) == ("WorstDrRpoSeconds", {"Deployment": "ec2-backup"})
        assert "vault" in emitted_under("WorstDrRpoSeconds")
        stat, = [q for q in alarm["Metrics"] if "MetricStat" in q]
        assert (stat["MetricStat"]["Stat"], stat["MetricStat"]["Period"], stat["ReturnData"]) == (
            "Maximum", 3600, False)
        returned, = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
        assert returned["Expression"].replace(" ", "") == f"{stat['Id']}/3600"
        assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (2, 2)
        assert (str(alarm["Threshold"]), alarm["ComparisonOperator"]) == (hours, "GreaterThanThreshold")
        assert alarm["TreatMissingData"] == "missing"
        assert f"older than {hours} hours" in alarm["AlarmDescription"]


@pytest.mark.parametrize("kind", sorted(DEPLOYMENTS))
def test_dr_alarms_only_where_the_deployment_has_the_figures(kind):
    """NotShared is published everywhere (0 without a DR account) but alarmed on only at home;
    the vault's figures exist only in a vault, and so do their alarms."""
    overrides = DEPLOYMENTS[kind]
    names = set(alarms(**overrides))
    assert ("NotSharedAlarm" in names) == ("DrAccount" in overrides)
    vault = {"DrRpoAlarm", "UnlockedAlarm", "SharedNotCopiedAlarm"}
    assert (vault & names) == (vault if "SourceAccounts" in overrides else set())


@pytest.mark.parametrize("kind", sorted(DEPLOYMENTS))
def test_dashboard_shows_the_vault_figures_per_source_account_in_a_vault_only(kind):
    shown: dict[str, list[dict]] = {}
    for widget in dashboard_widgets(**DEPLOYMENTS[kind]):
        if widget["type"] == "metric":
            for m in widget_metrics(widget):
                shown.setdefault(m["name"], []).append(m["dimensions"])
    # NotShared's total with the other monitor totals, in every deployment.
    assert {"Deployment": "ec2-backup"} in shown["NotShared"]
    for name in ("WorstDrRpoSeconds", "Unlocked", "SharedNotCopied"):
        if "SourceAccounts" in DEPLOYMENTS[kind]:
            assert shown[name] == [{"Deployment": "ec2-backup", "SourceAccount": None}], name
        else:
            assert name not in shown, name
