"""The embedded servers: weights are refused unless their sha256 matches; everything started is stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudagent.cli.services import embedded_services, free_port
from fraudagent.core.settings import Settings
from tests.conftest import ARTIFACTS


def test_servers_are_stopped_when_the_work_inside_fails() -> None:
    started = {}
    with pytest.raises(RuntimeError, match="boom"):
        with embedded_services(
            Settings(),
            log_dir=ARTIFACTS / "logs",
            llm=False,
            kinesis=True,
            ddb_port=free_port(),
            kinesis_port=free_port(),
        ) as services:
            started = dict(services)
            assert services["dynamodb"].process.poll() is None
            assert services["kinesis"].process.poll() is None
            raise RuntimeError("boom")
    assert started["dynamodb"].process.poll() is not None
    assert started["kinesis"].process.poll() is not None


def test_the_demo_starts_kinesalite_on_loopback_and_boto3_reads_and_writes_it() -> None:
    """What `fraudagent demo` starts (embedded_services(kinesis=True)): kinesalite answering boto3's Kinesis calls,
    bound to 127.0.0.1 only, and stopped with the rest."""
    from fraudagent.intake.service import open_stream

    port = free_port()
    settings = Settings(
        kinesis_endpoint_url=f"http://127.0.0.1:{port}", intake_stream="svc-check", intake_stream_shards=1
    )
    only_kinesis = {"dynamodb": False, "llm": False, "kinesis": True}
    with embedded_services(settings, log_dir=ARTIFACTS / "logs", kinesis_port=port, **only_kinesis) as services:
        stream = open_stream(settings)
        put = stream.put(b'{"x": 1}', "k")
        [shard] = stream.shards()
        assert shard["ShardId"] == put["ShardId"]
        records = stream.records(stream.iterator(shard["ShardId"], after=None), 10)["Records"]
        assert [r["Data"] for r in records] == [b'{"x": 1}']
        proc = services["kinesis"]
        listening = {
            line.split()[1]
            for table in ("/proc/net/tcp", "/proc/net/tcp6")
            for line in Path(table).read_text().splitlines()[1:]
            if line.split()[3] == "0A"  # LISTEN
        }
        on_port = {address for address in listening if address.endswith(f":{port:04X}")}
        assert on_port == {f"0100007F:{port:04X}"}, on_port  # 127.0.0.1 only
    assert proc.process.poll() is not None
