"""Alert intake's steps, each a plain function: parse and check a record, open its case, triage it on arrival,
queue its draft, dead-letter what can't be used; and the Kinesis client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from fraudagent import store
from fraudagent.agent.evidence import Known
from fraudagent.agent.pipeline import Investigator, draft_and_store, policy_report
from fraudagent.agent.report import InvestigationReport
from fraudagent.bundles.service import PastCaseSink, Scorer, load_records
from fraudagent.core.bundle import parse_bundle, validation_problems
from fraudagent.core.errors import DependencyUnavailable, InvalidInput, Problem
from fraudagent.core.models import Case, CaseBundle, Trigger
from fraudagent.core.settings import Settings
from fraudagent.intake.models import AlertRecord
from fraudagent.store import audit
from fraudagent.store import intake as intake_store
from fraudagent.store.cases import CaseRecord
from fraudagent.store.intake import DeadLetterReason
from fraudagent.store.tables import Tables
from fraudagent.summaries.callbacks import check_callback_url
from fraudagent.summaries.models import SummaryRequest


class Rejected(Exception):
    """The record can't become a case: it goes to the dead-letter table with this reason."""

    def __init__(
        self, reason: DeadLetterReason, detail: str, problems: list[Problem] | None = None, alert_id: str | None = None
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.problems = problems or []
        self.alert_id = alert_id


# --- the record ----------------------------------------------------------------


def parse_record(data: bytes) -> tuple[AlertRecord, CaseBundle | None]:
    """Decode and validate one record; Rejected (invalid_json, invalid_record) says every problem by JSON path."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Rejected("invalid_json", f"not valid JSON: {type(error).__name__}") from None
    alert_id = doc.get("alert_id") if isinstance(doc, dict) and isinstance(doc.get("alert_id"), str) else None
    if not isinstance(doc, dict):
        raise Rejected("invalid_record", "an alert record must be a JSON object", [Problem("$", "not an object")])
    try:
        record = AlertRecord.model_validate(doc)
    except ValidationError as error:
        problems = validation_problems(error, "$")
        raise Rejected(
            "invalid_record",
            f"{len(problems)} problem(s) in the record",
            problems,
            alert_id[:128] if alert_id else None,
        ) from None
    bundle = None
    if record.bundle is not None:
        bundle, problems = parse_bundle(record.bundle, root="$.bundle")
        if bundle is not None:
            if bundle.case.account_id != record.account_id:
                problems.append(Problem("$.account_id", "must be the bundle case's account_id"))
            known = {e.event_id for e in bundle.events}
            problems += [
                Problem(f"$.event_ids[{i}]", f"{e!r} is not in the bundle's events")
                for i, e in enumerate(record.event_ids)
                if e not in known
            ]
        if problems:
            raise Rejected("invalid_record", f"{len(problems)} problem(s) in the record", problems, record.alert_id)
    return record, bundle


def _trigger(record: AlertRecord) -> Trigger:
    """The alert's trigger, naming the scored events (the evidence's `fact:trigger_event` looks for an id in it)."""
    named = [e for e in record.event_ids if e not in record.trigger.detail]
    detail = record.trigger.detail
    if named:
        detail = (detail + "; " if detail else "") + "events " + " ".join(named)
    return Trigger(kind=record.trigger.kind, detail=detail[:500])


def case_record(
    tables: Tables, record: AlertRecord, bundle: CaseBundle | None, *, window_days: int, max_events: int
) -> Known:
    """The case an alert opens, with what was read to build it (for its evidence: not read again). With a bundle:
    the bundle's case id, accounts and evidence, with the alert's trigger, priority, time and note. Without: the
    alert id is the case id, and the account must be known (unknown_account)."""
    if bundle is not None:
        case = bundle.case.model_copy(
            update={
                "opened_at": record.raised_at,
                "trigger": _trigger(record),
                "priority": record.priority,
                "note": record.note if record.note is not None else bundle.case.note,
            }
        )
        times = [e.ts for e in bundle.events]
        scores = [s.score for s in bundle.scores or [] if s.event_id in set(record.event_ids)] or [
            s.score for s in bundle.scores or []
        ]
        return Known(
            CaseRecord(
                case=case,
                account_ids=[a.account_id for a in bundle.accounts],
                past_case_ids=[p.case_id for p in bundle.past_cases],
                window_start=min(times) if times else None,
                window_end=max(times) if times else None,
                max_score=max(scores) if scores else None,
                alert_id=record.alert_id,
                alert_event_ids=list(record.event_ids),
            )
        )
    accounts = store.events.get_accounts(tables, [record.account_id])
    if record.account_id not in accounts:
        raise Rejected("unknown_account", "the record names an account the store does not know", [], record.alert_id)
    # The evidence window and bound of the case's report (agent/evidence.py), so the report reuses this read.
    events, cut = store.events.account_events(
        tables,
        record.account_id,
        start=record.raised_at - timedelta(days=window_days),
        end=record.raised_at + timedelta(days=1),
        max_items=max_events,
    )
    named = [s for s in events if s.event.event_id in set(record.event_ids)]
    scores = [s.score.score for s in named if s.score is not None]
    case = Case(
        case_id=record.alert_id,
        account_id=record.account_id,
        opened_at=record.raised_at,
        trigger=_trigger(record),
        priority=record.priority,
        note=record.note,
    )
    case_record = CaseRecord(
        case=case,
        account_ids=[record.account_id],
        window_start=min((s.event.ts for s in events), default=None),
        window_end=max((s.event.ts for s in events), default=None),
        max_score=max(scores) if scores else None,
        alert_id=record.alert_id,
        alert_event_ids=list(record.event_ids),
    )
    return Known(case_record, accounts=accounts, events=(events, cut))


def write_bundle_records(
    tables: Tables, bundle: CaseBundle, *, past_case_store: PastCaseSink | None, scorer: Scorer | None
) -> None:
    """The bundle's accounts, events (scored now when it has no scores) and past cases: idempotent puts."""
    load_records(
        tables,
        accounts=bundle.accounts,
        events=bundle.events,
        scores=bundle.scores,
        past_cases=bundle.past_cases,
        past_case_store=past_case_store,
        scorer=scorer,
    )


def report_on_arrival(investigator: Investigator, known: Known, *, worker: str) -> tuple[InvestigationReport, str]:
    """The rule-based report of a case about to be opened (facts and policy, no model: milliseconds), and its
    evidence snapshot; not stored (`open_case` writes it with the case)."""
    report, pack = policy_report(investigator, known, requested_by=f"intake {worker}")
    return report, pack.model_dump_json()


def open_case(
    tables: Tables,
    record: CaseRecord,
    *,
    report: InvestigationReport,
    snapshot: str,
    worker: str,
    shard_id: str,
    sequence_number: str,
) -> bool:
    """Create the case with its audit record and its report on arrival, in one transaction (so no case is ever
    without it); False when the alert opened it before (a replay: nothing written). A case id that exists from
    something else is Rejected (case_conflict)."""
    event = audit.new_event(
        subject=audit.case_subject(record.case.case_id),
        action="case.opened",
        actor=f"intake {worker}",
        details={
            "alert_id": record.alert_id,
            "shard_id": shard_id,
            "sequence_number": sequence_number,
            "priority": record.case.priority.value,
        },
    )
    writes = store.reports.report_writes(
        tables,
        case_id=record.case.case_id,
        report=report.model_dump(mode="json"),
        snapshot=snapshot,
        created=event.at,
    )
    record = record.model_copy(update={"suggested_typology": report.typology})
    if store.cases.create_case(tables, record, event=event, with_writes=writes):
        return True
    existing = store.cases.get_case(tables, record.case.case_id)
    if existing.alert_id != record.alert_id:
        raise Rejected(
            "case_conflict",
            f"case {record.case.case_id} exists already and was not opened by this alert",
            [],
            record.alert_id,
        )
    return False


# --- triage on arrival -----------------------------------------------------------


def triage_report(investigator: Investigator, *, case_id: str, worker: str) -> str:
    """For a replayed record: the path of the case's newest report. The report on arrival is written with the case,
    so it is there; a case opened without one (by an intake before reports were written with their case) gets the
    rule-based report now."""
    latest = store.reports.reports(investigator.history, case_id, limit=1)
    if latest:
        return str(latest[0].get("path"))
    report = draft_and_store(investigator, case_id, requested_by=f"intake {worker}", use_model=False)
    return report.path


def draft_job_id(alert_id: str) -> str:
    return f"draft-{alert_id}"


def queue_draft(tables: Tables, settings: Settings, *, case: Case, alert_id: str, worker: str) -> str | None:
    """Queue the LLM draft through the summary job queue when the case's priority has automatic drafting on; the
    job delivers the summary to FRAUDAGENT_INTAKE_CALLBACK_URL when set. Idempotent on the alert id."""
    if case.priority.value not in settings.auto_draft_priorities:
        return None
    request = SummaryRequest(
        case_id=case.case_id, callback_url=settings.intake_callback_url, format=settings.intake_summary_format
    )
    job_id = draft_job_id(alert_id)
    event = audit.new_event(
        subject=audit.case_subject(case.case_id),
        action="summary.requested",
        actor=f"intake {worker}",
        details={"job_id": job_id, "format": request.format, "callback": request.callback_url is not None},
    )
    job, _ = store.jobs.create_job(
        tables,
        job_id=job_id,
        request=request,
        fields=list(settings.summary_ticketing_fields),
        redact_pii=True,
        requested_by=f"intake {worker}",
        caller_key_id="intake",
        priority=case.priority.value,
        draft=True,
        event=event,  # the job and its audit record together, once
    )
    return job.job_id


# --- dead letters ----------------------------------------------------------------


def dead_letter(
    tables: Tables,
    *,
    stream: str,
    shard_id: str,
    sequence_number: str,
    partition_key: str,
    arrived_at: datetime | None,
    raw: bytes,
    rejected: Rejected,
    worker: str,
) -> bool:
    """Keep the record with why it was refused; False when it was dead-lettered before (a replay)."""
    letter = intake_store.DeadLetter(
        stream=stream,
        shard_id=shard_id,
        sequence_number=sequence_number,
        partition_key=partition_key,
        arrived_at=arrived_at,
        dead_lettered_at=datetime.now(timezone.utc),
        reason=rejected.reason,
        detail=rejected.detail[:500],
        problems=[str(p)[:300] for p in rejected.problems[:50]],
        alert_id=rejected.alert_id,
        worker=worker,
        raw=raw,
        raw_size=len(raw),
        raw_truncated=len(raw) > intake_store.MAX_RAW_BYTES,
    )
    event = audit.new_event(
        subject=intake_store.subject(stream, shard_id),
        action="intake.dead_lettered",
        actor=f"intake {worker}",
        details={"sequence_number": sequence_number, "reason": rejected.reason, "problems": len(rejected.problems)},
    )
    return intake_store.put_dead_letter(tables, letter, event=event)


# --- Kinesis ---------------------------------------------------------------------

_THROTTLED = {"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException"}


def _throttled(error: BaseException) -> bool:
    return isinstance(error, ClientError) and error.response["Error"]["Code"] in _THROTTLED


def make_kinesis_client(settings: Settings) -> Any:
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": config}
    if settings.kinesis_endpoint_url:
        # kinesalite accepts any credentials; a real AWS profile is neither needed nor sent to it.
        kwargs |= {
            "endpoint_url": settings.kinesis_endpoint_url,
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
    return boto3.client("kinesis", **kwargs)


@dataclass
class Stream:
    """One stream through one client: throttling is retried with backoff, an unreachable endpoint is
    DependencyUnavailable."""

    client: Any
    name: str

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_throttled),
                wait=wait_exponential(multiplier=0.2, max=5),
                stop=stop_after_attempt(6),
                reraise=True,
            ):
                with attempt:
                    return dict(getattr(self.client, operation)(**kwargs))
        except BotoCoreError as error:
            raise DependencyUnavailable("kinesis", type(error).__name__) from error
        raise AssertionError("unreachable")

    def exists(self) -> bool:
        try:
            self.call("describe_stream_summary", StreamName=self.name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                return False
            raise
        return True

    def create(self, shards: int) -> None:
        try:
            self.call("create_stream", StreamName=self.name, ShardCount=shards)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
        self.client.get_waiter("stream_exists").wait(
            StreamName=self.name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120}
        )

    def shards(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        response = self.call("list_shards", StreamName=self.name)
        while True:
            found += response.get("Shards", [])
            token = response.get("NextToken")
            if not token:
                return found
            response = self.call("list_shards", NextToken=token)

    def iterator(self, shard_id: str, after: str | None) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.name, "ShardId": shard_id}
        if after:
            kwargs |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        return str(self.call("get_shard_iterator", **kwargs)["ShardIterator"])

    def records(self, iterator: str, limit: int) -> dict[str, Any]:
        return self.call("get_records", ShardIterator=iterator, Limit=limit)

    def put(self, data: bytes, partition_key: str) -> dict[str, Any]:
        return self.call("put_record", StreamName=self.name, Data=data, PartitionKey=partition_key)


def open_stream(settings: Settings, *, client: Any | None = None) -> Stream:
    """The configured stream; on a local endpoint (kinesalite) it is created when missing, on AWS it must exist."""
    stream = Stream(client if client is not None else make_kinesis_client(settings), settings.intake_stream)
    if not stream.exists():
        if not settings.kinesis_endpoint_url:
            raise InvalidInput(
                f"the Kinesis stream {settings.intake_stream!r} does not exist in {settings.aws_region}",
                [Problem("FRAUDAGENT_INTAKE_STREAM", "create the stream first (deploy/cdk does)")],
            )
        stream.create(settings.intake_stream_shards)
    return stream


def check_settings(settings: Settings) -> None:
    """Refuse a callback for automatic drafts that could never be delivered (no secret, or a refused address)."""
    if settings.intake_callback_url is None:
        return
    if settings.callback_secret is None:
        raise InvalidInput(
            "FRAUDAGENT_INTAKE_CALLBACK_URL needs FRAUDAGENT_CALLBACK_SECRET",
            [Problem("FRAUDAGENT_CALLBACK_SECRET", "callbacks are signed with it; it is not set")],
        )
    check_callback_url(settings.intake_callback_url, production=settings.environment == "production")
