"""The AWS side of fraudagent: DynamoDB tables, the Kinesis alert stream, one IAM role per component, alarms.

The tables come from `fraudagent.store.dynamo.ALL_TABLES` through `table_definition`, the same CreateTable
request the code sends to DynamoDB Local, so a table added there is in the next synth. The EKS cluster is not
made here: the stack takes the cluster's OIDC provider (IAM roles for service accounts) as configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from fraudagent.store import dynamo

# CloudWatch namespace the CloudWatch agent writes the app's Prometheus metrics into (deploy/k8s/base/cwagent).
APP_METRICS_NAMESPACE = "Fraudagent"

# What DynamoDB calls each component makes (TransactWriteItems is authorised as its Put/Update/ConditionCheck parts).
DDB_READ = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable")
DDB_WRITE = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
)
# The tables the summary workers touch: a case's evidence, its reports (each report's stats go to `feedback` in the
# same transaction) and audit records, and the job queue.
SUMMARY_WORKER_TABLES = ("accounts", "events", "cases", "reports", "audit", "jobs", "feedback")
# Intake reads the alert's account and events, writes the cases it opens (with a bundle: accounts and events too),
# the report on arrival (reports, feedback), their audit records and auto-draft jobs, and its own lease and
# dead-letter tables. A table the code adds later goes to the API alone until a component is given it here.
INTAKE_TABLES = (
    "accounts",
    "events",
    "cases",
    "reports",
    "feedback",
    "audit",
    "jobs",
    "intake-leases",
    "dead-letters",
)
# Only the keys table is scanned (listing keys); every other read is by key or index.
SCANNED_TABLES = ("keys",)


@dataclass(frozen=True)
class DeployConfig:
    """What differs between one AWS account and another; `cdk synth -c name=value` overrides each field."""

    table_prefix: str = "fraudagent"  # FRAUDAGENT_TABLE_PREFIX of the pods
    alert_stream: str = "fraudagent-alerts"  # FRAUDAGENT_INTAKE_STREAM
    namespace: str = "fraudagent"  # the Kubernetes namespace of deploy/k8s
    cluster_name: str = "fraudagent"  # the EKS cluster (the ClusterName dimension of the app's metrics)
    # The EKS cluster's OIDC issuer, without https:// (`aws eks describe-cluster ... identity.oidc.issuer`).
    oidc_issuer: str = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    keda_namespace: str = "keda"
    cwagent_namespace: str = "amazon-cloudwatch"
    alarm_email: str | None = None
    iterator_age_alarm_s: int = 300
    fallback_rate_alarm_percent: float = 20.0

    @classmethod
    def from_context(cls, read: Any) -> DeployConfig:
        """Fields from CDK context (`read` is `node.try_get_context`); what is not given keeps its default."""
        values = {}
        for name, default in cls().__dict__.items():
            given = read(name)
            if given is not None:
                values[name] = type(default)(given) if default is not None else given
        return cls(**values)


class FraudagentStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{config.table_prefix}-data",
            description="fraudagent: DynamoDB tables, the alert stream, alarm topic and metric logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.tables = {spec.suffix: self._table(spec) for spec in dynamo.ALL_TABLES}
        self.stream = kinesis.Stream(
            self,
            "AlertStream",
            stream_name=config.alert_stream,
            stream_mode=kinesis.StreamMode.ON_DEMAND,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=self.key,
            retention_period=Duration.days(7),
        )
        self.metric_logs = self._metric_log_group()
        self.roles = {
            "api": self._api_role(),
            "worker": self._worker_role(),
            "intake": self._intake_role(),
            "cwagent": self._cwagent_role(),
            "keda": self._keda_role(),
        }
        self.alarm_topic = sns.Topic(self, "AlarmTopic", master_key=self.key, display_name="fraudagent alarms")
        self.key.grant_encrypt_decrypt(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        if config.alarm_email:
            sns.Subscription(
                self,
                "AlarmEmail",
                topic=self.alarm_topic,
                protocol=sns.SubscriptionProtocol.EMAIL,
                endpoint=config.alarm_email,
            )
        self.alarms = self._alarms()

    # --- data ---

    def _table(self, spec: dynamo.TableSpec) -> dynamodb.CfnTable:
        name = dynamo.table_name_for_prefix(self.config.table_prefix, spec)
        definition = dynamo.table_definition(name, spec)
        table = dynamodb.CfnTable(
            self,
            f"Table{_id(spec.suffix)}",
            table_name=definition["TableName"],
            key_schema=[_key(k) for k in definition["KeySchema"]],
            attribute_definitions=[
                dynamodb.CfnTable.AttributeDefinitionProperty(
                    attribute_name=a["AttributeName"], attribute_type=a["AttributeType"]
                )
                for a in definition["AttributeDefinitions"]
            ],
            global_secondary_indexes=[
                dynamodb.CfnTable.GlobalSecondaryIndexProperty(
                    index_name=index["IndexName"],
                    key_schema=[_key(k) for k in index["KeySchema"]],
                    projection=dynamodb.CfnTable.ProjectionProperty(
                        projection_type=index["Projection"]["ProjectionType"]
                    ),
                )
                for index in definition.get("GlobalSecondaryIndexes", [])
            ]
            or None,
            billing_mode=definition["BillingMode"],
            point_in_time_recovery_specification=dynamodb.CfnTable.PointInTimeRecoverySpecificationProperty(
                point_in_time_recovery_enabled=True
            ),
            sse_specification=dynamodb.CfnTable.SSESpecificationProperty(
                sse_enabled=True, sse_type="KMS", kms_master_key_id=self.key.key_arn
            ),
            time_to_live_specification=dynamodb.CfnTable.TimeToLiveSpecificationProperty(
                enabled=True, attribute_name=spec.ttl_attribute
            )
            if spec.ttl_attribute
            else None,
            deletion_protection_enabled=True,
        )
        table.apply_removal_policy(RemovalPolicy.RETAIN)
        return table

    def _metric_log_group(self) -> logs.LogGroup:
        # The CloudWatch agent sends the scraped Prometheus metrics as embedded metric format log events here;
        # CloudWatch turns them into metrics of APP_METRICS_NAMESPACE.
        self.key.grant_encrypt_decrypt(iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com"))
        return logs.LogGroup(
            self,
            "AppMetricLogs",
            log_group_name=f"/aws/containerinsights/{self.config.cluster_name}/prometheus",
            encryption_key=self.key,
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.RETAIN,
        )

    # --- IAM: one role per service account, each with the calls that component makes ---

    def _service_account_role(
        self, construct_id: str, component: str, namespace: str, service_account: str
    ) -> iam.Role:
        issuer = self.config.oidc_issuer
        principal = iam.FederatedPrincipal(
            f"arn:{self.partition}:iam::{self.account}:oidc-provider/{issuer}",
            conditions={
                "StringEquals": {
                    f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    f"{issuer}:aud": "sts.amazonaws.com",
                }
            },
            assume_role_action="sts:AssumeRoleWithWebIdentity",
        )
        # A fixed name, <table_prefix>-<component>, so deploy/k8s/overlays/eks can name it in the annotation.
        role = iam.Role(
            self,
            construct_id,
            role_name=f"{self.config.table_prefix}-{component}",
            assumed_by=principal,
            description=f"IRSA role of {namespace}/{service_account}",
            max_session_duration=Duration.hours(1),
        )
        CfnOutput(
            self,
            f"{construct_id}Arn",
            value=role.role_arn,
            description=f"eks.amazonaws.com/role-arn of {service_account}",
        )
        return role

    def _grant_tables(self, role: iam.Role, sid: str, suffixes: Iterable[str], actions: Sequence[str]) -> None:
        tables = [self.tables[s] for s in suffixes if s in self.tables]
        if not tables:
            return
        resources = [t.attr_arn for t in tables] + [f"{t.attr_arn}/index/*" for t in tables]
        role.add_to_policy(iam.PolicyStatement(sid=sid, actions=list(actions), resources=resources))

    def _grant_table_key(self, role: iam.Role) -> None:
        # Tables encrypted with our key: DynamoDB uses it on the caller's behalf, and only through DynamoDB.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TableKeyThroughDynamoDB",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{self.region}.amazonaws.com"}},
            )
        )

    def _api_role(self) -> iam.Role:
        role = self._service_account_role("ApiRole", "api", self.config.namespace, "fraudagent-api")
        everything = list(self.tables)
        self._grant_tables(role, "ReadTables", everything, DDB_READ)
        self._grant_tables(role, "WriteTables", everything, DDB_WRITE)
        self._grant_tables(role, "ListKeys", SCANNED_TABLES, ("dynamodb:Scan",))
        self._grant_table_key(role)
        return role

    def _worker_role(self) -> iam.Role:
        role = self._service_account_role("SummaryWorkerRole", "worker", self.config.namespace, "fraudagent-worker")
        self._grant_tables(role, "ReadTables", SUMMARY_WORKER_TABLES, DDB_READ)
        self._grant_tables(role, "WriteTables", SUMMARY_WORKER_TABLES, DDB_WRITE)
        self._grant_table_key(role)
        return role

    def _intake_role(self) -> iam.Role:
        role = self._service_account_role("IntakeRole", "intake", self.config.namespace, "fraudagent-intake")
        tables = list(INTAKE_TABLES)
        self._grant_tables(role, "ReadTables", tables, DDB_READ)
        self._grant_tables(role, "WriteTables", tables, DDB_WRITE)
        self._grant_table_key(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadAlertStream",
                actions=[
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:ListShards",
                    "kinesis:GetShardIterator",
                    "kinesis:GetRecords",
                ],
                resources=[self.stream.stream_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StreamKeyThroughKinesis",
                actions=["kms:Decrypt"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"kinesis.{self.region}.amazonaws.com"}},
            )
        )
        return role

    def _cwagent_role(self) -> iam.Role:
        role = self._service_account_role(
            "CloudWatchAgentRole", "cwagent", self.config.cwagent_namespace, "cloudwatch-agent"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteMetricLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[self.metric_logs.log_group_arn, f"{self.metric_logs.log_group_arn}:log-stream:*"],
            )
        )
        return role

    def _keda_role(self) -> iam.Role:
        # KEDA's operator reads the scaling inputs: the stream's shard count and the metrics it scales on.
        role = self._service_account_role("KedaOperatorRole", "keda", self.config.keda_namespace, "keda-operator")
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StreamShards",
                actions=["kinesis:DescribeStreamSummary"],
                resources=[self.stream.stream_arn],
            )
        )
        # GetMetricData has no resource-level permissions in IAM: "*" is the only resource it accepts.
        statement = iam.PolicyStatement(sid="ScalingMetrics", actions=["cloudwatch:GetMetricData"], resources=["*"])
        role.add_to_policy(statement)
        return role

    # --- alarms ---

    def _alarms(self) -> list[cloudwatch.Alarm]:
        alarms = []
        five_minutes = Duration.minutes(5)
        for suffix, table in self.tables.items():
            dims = {"TableName": table.ref}
            throttles = cloudwatch.MathExpression(
                expression="FILL(reads, 0) + FILL(writes, 0)",
                using_metrics={
                    "reads": cloudwatch.Metric(
                        namespace="AWS/DynamoDB",
                        metric_name="ReadThrottleEvents",
                        dimensions_map=dims,
                        statistic="Sum",
                        period=five_minutes,
                    ),
                    "writes": cloudwatch.Metric(
                        namespace="AWS/DynamoDB",
                        metric_name="WriteThrottleEvents",
                        dimensions_map=dims,
                        statistic="Sum",
                        period=five_minutes,
                    ),
                },
                label=f"{suffix} throttled requests",
                period=five_minutes,
            )
            alarms.append(
                self._alarm(
                    f"Throttles{_id(suffix)}",
                    throttles,
                    threshold=1,
                    evaluation_periods=2,
                    description=f"DynamoDB table {suffix} throttles requests (on-demand: a hot key or a burst)",
                )
            )
        alarms.append(
            self._alarm(
                "AlertStreamIteratorAge",
                self.stream.metric_get_records_iterator_age_milliseconds(statistic="Maximum", period=five_minutes),
                threshold=self.config.iterator_age_alarm_s * 1000,
                evaluation_periods=3,
                description="intake falls behind the alert stream (GetRecords.IteratorAgeMilliseconds)",
            )
        )
        alarms.append(
            self._alarm(
                "AlertStreamWriteThrottles",
                self.stream.metric_put_records_throttled_records(statistic="Sum", period=five_minutes),
                threshold=1,
                evaluation_periods=2,
                description="producers of alerts are throttled by the stream",
            )
        )
        cluster = {"ClusterName": self.config.cluster_name}
        alarms.append(
            self._alarm(
                "IntakeDeadLetters",
                cloudwatch.Metric(
                    namespace=APP_METRICS_NAMESPACE,
                    metric_name="fraudagent_intake_dead_letters_total",
                    dimensions_map=cluster,
                    statistic="Sum",
                    period=five_minutes,
                ),
                threshold=1,
                evaluation_periods=1,
                description="alerts intake could not turn into cases went to the dead-letter table",
            )
        )
        paths = ("llm", "llm_retried", "fallback")
        quarter = Duration.minutes(15)
        fallback_rate = cloudwatch.MathExpression(
            expression="IF(llm + llm_retried + fallback > 0, 100 * fallback / (llm + llm_retried + fallback), 0)",
            using_metrics={
                path: cloudwatch.MathExpression(
                    expression=f"FILL(m_{path}, 0)",
                    using_metrics={
                        f"m_{path}": cloudwatch.Metric(
                            namespace=APP_METRICS_NAMESPACE,
                            metric_name="fraudagent_reports_total",
                            dimensions_map={**cluster, "path": path},
                            statistic="Sum",
                            period=quarter,
                        )
                    },
                    period=quarter,
                )
                for path in paths
            },
            label="share of model-drafted reports that fell back to the deterministic report (%)",
            period=quarter,
        )
        alarms.append(
            self._alarm(
                "ReportFallbackRate",
                fallback_rate,
                threshold=self.config.fallback_rate_alarm_percent,
                evaluation_periods=2,
                description="the model's drafts fail the verifier more often than usual (report path fallback)",
            )
        )
        return alarms

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        evaluation_periods: int,
        description: str,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.alarm_topic))
        return alarm


def _key(element: dict[str, str]) -> dynamodb.CfnTable.KeySchemaProperty:
    return dynamodb.CfnTable.KeySchemaProperty(attribute_name=element["AttributeName"], key_type=element["KeyType"])


def _id(suffix: str) -> str:
    return "".join(part.title() for part in suffix.replace("-", "_").split("_"))
