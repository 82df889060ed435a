"""The embedded servers: weights are refused unless their sha256 matches; everything started is stopped."""

from __future__ import annotations

import pytest

from fraudagent.cli.services import embedded_services, free_port
from fraudagent.core.settings import Settings
from tests.conftest import ARTIFACTS


def test_servers_are_stopped_when_the_work_inside_fails() -> None:
    started = {}
    with pytest.raises(RuntimeError, match="boom"):
        with embedded_services(Settings(), log_dir=ARTIFACTS / "logs", llm=False, ddb_port=free_port()) as services:
            started = dict(services)
            assert services["dynamodb"].process.poll() is None
            raise RuntimeError("boom")
    assert started["dynamodb"].process.poll() is not None
