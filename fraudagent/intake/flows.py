"""Intake workers: lease shards of the alert stream, turn each record into a triaged case, checkpoint.

What is guaranteed (precisely):
- Shards are shared through `<prefix>-intake-leases` (store/intake.py): a worker holds a shard only after a
  conditional write gave it the lease; it renews its leases every third of FRAUDAGENT_INTAKE_LEASE_S; each worker
  aims at an even share (the shards readable now, over the workers holding a live lease), taking free or expired
  leases first and then one lease per round from the busiest worker while that one holds more than its share. A
  worker that stops without releasing (killed) keeps its leases until they expire; then the others take them over
  and read on from the checkpoint.
- A shard is checkpointed (a sequence number on the lease, with a write fenced by the lease) once per GetRecords
  batch (FRAUDAGENT_INTAKE_BATCH_SIZE records), at the last record whose case, report on arrival and draft job are
  written or which is dead-lettered; a worker stopped cleanly checkpoints what it did before giving its leases back.
  Delivery is therefore at least once: a worker that dies, or loses its lease, before its checkpoint leaves the
  records since the previous one (at most a batch) to be read again; a replay creates nothing, because the case
  with its report on arrival, the draft job (id `draft-<alert id>`) and the dead letter (keyed by shard and sequence
  number) are each created once, on the alert id. A worker finds out it lost a lease at its next renewal (every
  third of FRAUDAGENT_INTAKE_LEASE_S) or checkpoint, and stops reading that shard there.
- A case is opened together with its report on arrival (facts and policy, no model) and both their audit records,
  in one transaction, so no case is ever seen without it; a draft job is queued with its `summary.requested` audit
  record in one transaction too. The report is built before the case is written, from the reads that checked the
  alert (the account and its events in the evidence window), which are not read again.
- A record that is not JSON, fails validation, names an unknown account or a case id another source holds goes to
  `<prefix>-dead-letters` with the reason and the raw record, and the shard moves on. A record that fails for
  another reason is tried FRAUDAGENT_INTAKE_MAX_ATTEMPTS times and then dead-lettered (`processing_failed`); while
  DynamoDB or Kinesis can't be reached, the shard waits and reads again from its checkpoint (nothing is skipped).
- After a split or a merge, a child shard is leased only when every parent is finished (read to its end, which is
  recorded on the parent's lease), so the records of one partition key become cases in the order they were put.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from fraudagent.agent.pipeline import Investigator
from fraudagent.bundles.service import PastCaseSink, Scorer
from fraudagent.core.errors import DependencyUnavailable
from fraudagent.core.settings import Settings
from fraudagent.intake import service
from fraudagent.intake.metrics import IntakeStats
from fraudagent.intake.models import RecordResult
from fraudagent.intake.service import Rejected, Stream
from fraudagent.store import intake as leases
from fraudagent.store.tables import Tables

log = logging.getLogger(__name__)


@dataclass
class IntakeContext:
    settings: Settings
    investigator: Investigator
    stream: Stream
    scorer: Scorer | None = None
    past_case_store: PastCaseSink | None = None
    stats: IntakeStats = field(default_factory=IntakeStats)
    on_job_queued: Callable[[], None] | None = None  # e.g. wake the summary workers of this process

    @property
    def tables(self) -> Tables:
        return self.investigator.history


def process_record(
    ctx: IntakeContext,
    *,
    worker: str,
    shard_id: str,
    sequence_number: str,
    partition_key: str,
    data: bytes,
    arrived_at: datetime | None = None,
) -> RecordResult:
    """One record: a new case (triaged on arrival), a replay (nothing new), or a dead letter."""
    s, tables = ctx.settings, ctx.tables
    base = {"shard_id": shard_id, "sequence_number": sequence_number}
    try:
        record, bundle = service.parse_record(data)
        if bundle is not None:
            service.write_bundle_records(tables, bundle, past_case_store=ctx.past_case_store, scorer=ctx.scorer)
        evidence = ctx.investigator.settings  # the report's evidence window and bound: its read is reused
        known = service.case_record(
            tables, record, bundle, window_days=evidence.evidence_window_days, max_events=evidence.evidence_max_events
        )
        report, snapshot = service.report_on_arrival(ctx.investigator, known, worker=worker)
        created = service.open_case(
            tables,
            known.record,
            report=report,
            snapshot=snapshot,
            worker=worker,
            shard_id=shard_id,
            sequence_number=sequence_number,
        )
    except Rejected as rejected:
        if service.dead_letter(
            tables,
            stream=ctx.stream.name,
            shard_id=shard_id,
            sequence_number=sequence_number,
            partition_key=partition_key,
            arrived_at=arrived_at,
            raw=data,
            rejected=rejected,
            worker=worker,
        ):
            ctx.stats.dead_lettered(rejected.reason)
        log.info("record %s of %s dead-lettered: %s", sequence_number, shard_id, rejected.reason)
        return RecordResult(outcome="dead_letter", alert_id=rejected.alert_id, reason=rejected.reason, **base)
    case_id = known.record.case.case_id
    path: str = report.path
    if created:
        ctx.stats.case_created()
    else:
        path = service.triage_report(ctx.investigator, case_id=case_id, worker=worker)
    job_id = service.queue_draft(tables, s, case=known.record.case, alert_id=record.alert_id, worker=worker)
    if job_id is not None and ctx.on_job_queued is not None:
        ctx.on_job_queued()
    return RecordResult(
        outcome="created" if created else "replayed",
        alert_id=record.alert_id,
        case_id=case_id,
        report_path=path,
        draft_job_id=job_id,
        **base,
    )


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _Shard:
    shard_id: str
    checkpoint: str | None
    iterator: str | None = None


class IntakeWorker:
    """One intake worker: `run()` in a thread (`start()`), or rounds driven by the caller (`run_until_idle()`)."""

    def __init__(self, ctx: IntakeContext, *, worker: str | None = None) -> None:
        self.ctx = ctx
        self.worker = worker or worker_id()
        self.held: dict[str, _Shard] = {}
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        # What this worker did with the records, in order (the CLI's summary, the demo's table); the latest only.
        self.results: deque[RecordResult] = deque(maxlen=10_000)
        self.outcomes: Counter[str] = Counter()  # every record's outcome, counted
        self._next_sync = 0.0
        self._next_renew = 0.0
        self._finished_in_round = False
        self._crashed = False  # kill(): stop as a crash would, without the last checkpoint

    @property
    def s(self) -> Settings:
        return self.ctx.settings

    def _note(self, result: RecordResult) -> None:
        self.results.append(result)
        self.outcomes[result.outcome] += 1

    # --- leases ------------------------------------------------------------------

    def _drop(self, shard_id: str) -> None:
        self.held.pop(shard_id, None)
        self.ctx.stats.forget_shard(shard_id)

    def _renew(self) -> None:
        for shard_id in list(self.held):
            if not leases.renew_lease(
                self.ctx.tables,
                stream=self.ctx.stream.name,
                shard_id=shard_id,
                worker=self.worker,
                lease_s=self.s.intake_lease_s,
            ):
                log.info("intake %s lost the lease of %s", self.worker, shard_id)
                self._drop(shard_id)
        self._next_renew = time.time() + self.s.intake_lease_s / 3

    def sync(self) -> None:
        """Discover shards, renew this worker's leases, and take (or balance) leases towards an even share."""
        tables, stream = self.ctx.tables, self.ctx.stream.name
        listed = self.ctx.stream.shards()
        known = {lease.shard_id for lease in leases.leases(tables, stream=stream)}
        for shard in listed:
            if shard["ShardId"] not in known:
                parents = [shard[k] for k in ("ParentShardId", "AdjacentParentShardId") if shard.get(k)]
                leases.ensure_lease(tables, stream=stream, shard_id=shard["ShardId"], parents=parents)
        self._renew()
        rows = {lease.shard_id: lease for lease in leases.leases(tables, stream=stream)}
        now = time.time()
        for shard_id in list(self.held):
            row = rows.get(shard_id)
            if row is None or row.owner != self.worker or row.finished:
                self._drop(shard_id)
        for row in rows.values():  # a lease this worker id holds from before (a restart under the same id)
            if row.owner == self.worker and row.held(now) and row.shard_id not in self.held:
                self.held[row.shard_id] = _Shard(row.shard_id, row.checkpoint)

        def parents_done(lease: leases.Lease) -> bool:
            # A parent no longer listed (past the stream's retention) has nothing left to read.
            return all(p not in rows or rows[p].finished for p in lease.parents)

        eligible = sorted((r for r in rows.values() if not r.finished and parents_done(r)), key=lambda r: r.shard_id)
        owners = Counter(r.owner for r in eligible if r.held(now) and r.owner is not None)
        target = math.ceil(len(eligible) / len(set(owners) | {self.worker})) if eligible else 0
        mine = owners[self.worker]
        for row in eligible:
            if mine >= target:
                break
            if not row.held(now) and self._take(row):
                mine += 1
        if mine < target:
            others = [(n, owner) for owner, n in owners.items() if owner != self.worker]
            if others:
                n, busiest = max(others)
                if n > target:
                    theirs = [r for r in eligible if r.owner == busiest and r.held(now)]
                    self._take(theirs[-1], from_owner=busiest)
        self._next_sync = time.time() + self.s.intake_lease_s / 3

    def _take(self, row: leases.Lease, from_owner: str | None = None) -> bool:
        taken = leases.take_lease(
            self.ctx.tables,
            stream=self.ctx.stream.name,
            shard_id=row.shard_id,
            worker=self.worker,
            lease_s=self.s.intake_lease_s,
            from_owner=from_owner,
        )
        if taken:
            log.info("intake %s took %s%s", self.worker, row.shard_id, f" from {from_owner}" if from_owner else "")
            self.held[row.shard_id] = _Shard(row.shard_id, row.checkpoint)
        return taken

    # --- reading -----------------------------------------------------------------

    def _handle(self, shard: _Shard, record: dict[str, Any]) -> bool:
        """Process one record to its end; False when the store is unreachable (read it again later)."""
        data = bytes(record["Data"])
        sequence = str(record["SequenceNumber"])
        arrived = record.get("ApproximateArrivalTimestamp")
        self.ctx.stats.record_read(shard.shard_id)
        last: Exception | None = None
        for attempt in range(1, self.s.intake_max_attempts + 1):
            try:
                result = process_record(
                    self.ctx,
                    worker=self.worker,
                    shard_id=shard.shard_id,
                    sequence_number=sequence,
                    partition_key=str(record.get("PartitionKey", "")),
                    data=data,
                    arrived_at=arrived if isinstance(arrived, datetime) else None,
                )
                self._note(result)
                return True
            except DependencyUnavailable as error:
                log.warning("intake %s: %s; reading %s again later", self.worker, error, shard.shard_id)
                return False
            except Exception as error:  # a bug or a bad record the checks missed: tried again, then dead-lettered
                last = error
                log.warning(
                    "intake %s: record %s failed (attempt %d): %s", self.worker, sequence, attempt, type(error).__name__
                )
        rejected = Rejected("processing_failed", f"failed {self.s.intake_max_attempts} times: {type(last).__name__}")
        if service.dead_letter(
            self.ctx.tables,
            stream=self.ctx.stream.name,
            shard_id=shard.shard_id,
            sequence_number=sequence,
            partition_key=str(record.get("PartitionKey", "")),
            arrived_at=arrived if isinstance(arrived, datetime) else None,
            raw=data,
            rejected=rejected,
            worker=self.worker,
        ):
            self.ctx.stats.dead_lettered(rejected.reason)
        self._note(
            RecordResult(
                outcome="dead_letter", shard_id=shard.shard_id, sequence_number=sequence, reason=rejected.reason
            )
        )
        return True

    def _checkpoint(self, shard: _Shard, sequence: str) -> bool:
        """Record `sequence` as done on the shard's lease (a write fenced by the lease, which it renews); False, and
        the shard dropped, when the lease was lost: its new holder reads on from the previous checkpoint."""
        if not leases.checkpoint(
            self.ctx.tables,
            stream=self.ctx.stream.name,
            shard_id=shard.shard_id,
            worker=self.worker,
            sequence_number=sequence,
            lease_s=self.s.intake_lease_s,
        ):
            log.info("intake %s lost the lease of %s; stopping there", self.worker, shard.shard_id)
            self._drop(shard.shard_id)
            return False
        shard.checkpoint = sequence
        return True

    def read_shard(self, shard: _Shard) -> int:
        """One GetRecords on a held shard: each record processed in order, then one checkpoint, at the last record
        done (so a crash leaves at most this batch to be read again: replays, which create nothing); the records
        done."""
        stream, tables = self.ctx.stream, self.ctx.tables
        if shard.iterator is None:
            shard.iterator = stream.iterator(shard.shard_id, after=shard.checkpoint)
        try:
            response = stream.records(shard.iterator, self.s.intake_batch_size)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ExpiredIteratorException", "InvalidArgumentException"):
                shard.iterator = None  # from the checkpoint again
                return 0
            raise
        self.ctx.stats.set_iterator_age(shard.shard_id, float(response.get("MillisBehindLatest", 0)) / 1000)
        records = response.get("Records", [])
        done = 0
        for record in records:
            if self.stopping.is_set() or shard.shard_id not in self.held:
                break
            if not self._handle(shard, record):
                shard.iterator = None  # the store is unreachable: read again from the checkpoint later
                break
            done += 1
            if time.time() >= self._next_renew:
                self._renew()  # drops the shard if its lease was lost meanwhile (then no checkpoint)
        if done and not self._crashed and shard.shard_id in self.held:
            if not self._checkpoint(shard, str(records[done - 1]["SequenceNumber"])):
                return done
        if done < len(records):  # stopped, the lease lost, or the store unreachable: the rest is read later
            return done
        shard.iterator = response.get("NextShardIterator")
        if shard.iterator is None:  # closed by a split or merge, and read to its end: its children may start
            leases.finish_shard(tables, stream=stream.name, shard_id=shard.shard_id, worker=self.worker)
            log.info("intake %s finished %s", self.worker, shard.shard_id)
            self._drop(shard.shard_id)
            self._finished_in_round = True
            self._next_sync = 0.0
        return done

    def round(self) -> int:
        """Sync when due, then one batch from every held shard; the records read."""
        self._finished_in_round = False
        if time.time() >= self._next_sync:
            self.sync()
        elif time.time() >= self._next_renew:
            self._renew()
        read = 0
        for shard in list(self.held.values()):
            if self.stopping.is_set():
                break
            if shard.shard_id in self.held:
                read += self.read_shard(shard)
        return read

    def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Rounds until one reads nothing, finishes no shard and leaves no lag (`fraudagent intake --once`)."""
        total = 0
        for _ in range(max_rounds):
            self._next_sync = 0.0
            read = self.round()
            total += read
            behind = any(age > 0 for age in self.ctx.stats.iterator_age_s.values())
            if read == 0 and not self._finished_in_round and not behind:
                break
        return total

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                read = self.round()
            except Exception as error:  # Kinesis or DynamoDB unreachable: wait and try again
                log.warning("intake %s: %s", self.worker, type(error).__name__)
                read = 0
            if read == 0 and not self._finished_in_round:
                self.stopping.wait(self.s.intake_poll_s)

    def start(self) -> IntakeWorker:
        self.thread = threading.Thread(target=self.run, name=f"intake-{self.worker}", daemon=True)
        self.thread.start()
        return self

    def kill(self, timeout: float = 10.0) -> None:
        """Stop reading as a crash would: the leases are not given back (others wait for them to expire) and the
        records done since the last checkpoint are not checkpointed (they will be read again)."""
        self._crashed = True
        self._halt(timeout)

    def _halt(self, timeout: float) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after checkpointing what was done, and give the leases back at once (checkpoints kept), so other
        workers go on without waiting."""
        self._halt(timeout)
        for shard_id in list(self.held):
            try:
                leases.release_lease(
                    self.ctx.tables, stream=self.ctx.stream.name, shard_id=shard_id, worker=self.worker
                )
            except Exception as error:  # it expires anyway
                log.warning("intake %s: releasing %s failed: %s", self.worker, shard_id, type(error).__name__)
            self._drop(shard_id)
