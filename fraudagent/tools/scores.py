"""The risk-scores tool, and where an event's risk score comes from: stored on the event, the scoring server, or
SageMaker.

Three providers behind one interface (`ScoreProvider`), chosen by the
setting `score_provider`:

- `StoredScores` (the default): the score each event got when it was
  scored and stored (on load, or by the production model upstream);
- `EndpointScores`: re-scores through the scoring server over HTTP
  (`fraudagent model serve`), retrying transient failures;
- `SageMakerScores`: the same payload through a SageMaker endpoint
  (`sagemaker-runtime` `invoke_endpoint`), retried by botocore.

The remote providers send the events as history (see `core/scoring.py`),
and are also a `bundles.service.Scorer`, so the loader can score through them. `risk_scores` is what
evidence gathering calls; `risk_scores_tool` is it as a LangChain tool bound to one case.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, ValidationError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from fraudagent.core.errors import DependencyUnavailable, InvalidInput, Problem
from fraudagent.core.models import Account, Event, Score
from fraudagent.core.scoring import InvocationRequest, InvocationResponse
from fraudagent.core.settings import Settings
from fraudagent.store.events import ScoredEvent

_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class ScoreProvider(Protocol):
    name: str

    def scores(self, events: Sequence[ScoredEvent], accounts: Sequence[Account]) -> list[Score]:
        """Scores for the money-moving events among `events`, which are also the history they are scored on."""
        ...


class StoredScores:
    """The scores stored on the events: no call anywhere."""

    name = "stored"

    def scores(self, events: Sequence[ScoredEvent], accounts: Sequence[Account]) -> list[Score]:
        return [e.score for e in events if e.score is not None]


def invocation_body(events: Sequence[Event], accounts: Sequence[Account]) -> bytes:
    """The `/invocations` payload for `events` (as history and to score) of `accounts`."""
    request = InvocationRequest(events=list(events), accounts=list(accounts))
    return request.model_dump_json(exclude_none=True).encode()


def parse_invocation_response(body: bytes, source: str) -> list[Score]:
    try:
        return InvocationResponse.model_validate_json(body).scores
    except ValidationError as error:
        detail = f"answered with an unexpected body ({error.error_count()} problems)"
        raise DependencyUnavailable(source, detail) from None


class _RemoteScores(ABC):
    """What both endpoint providers share: the payload in, the scores out, and the `Scorer` shape."""

    name = "remote"

    def scores(self, events: Sequence[ScoredEvent], accounts: Sequence[Account]) -> list[Score]:
        return self.score_events([e.event for e in events], {a.account_id: a for a in accounts})

    def score_events(self, events: Sequence[Event], accounts: Mapping[str, Account]) -> list[Score]:
        if not events:
            return []
        named = {e.account_id for e in events}
        return self._invoke(invocation_body(events, [a for a in accounts.values() if a.account_id in named]))

    @abstractmethod
    def _invoke(self, body: bytes) -> list[Score]:
        """Send one `/invocations` payload; the scores it answers with."""


class _Transient(Exception):
    """A failure worth retrying: the server was unreachable, overloaded or failing."""


class EndpointScores(_RemoteScores):
    """The scoring server over HTTP (`fraudagent model serve`, or anything speaking its contract)."""

    name = "http"

    def __init__(self, base_url: str, *, timeout_s: float, max_attempts: int) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s)
        self._post_with_retries = retry(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(max_attempts),
            wait=wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        )(self._post)

    @classmethod
    def from_settings(cls, settings: Settings) -> EndpointScores:
        return cls(
            settings.scoring_url, timeout_s=settings.scoring_timeout_s, max_attempts=settings.scoring_max_attempts
        )

    def ping(self) -> bool:
        try:
            return self._client.get(f"{self.base_url}/ping").status_code == 200
        except httpx.TransportError:
            return False

    def _invoke(self, body: bytes) -> list[Score]:
        source = f"scoring server {self.base_url}"
        try:
            response = self._post_with_retries(body)
        except _Transient as error:
            raise DependencyUnavailable(source, str(error)) from None
        if response.status_code >= 400:
            raise _refusal(response.status_code, response.content, source)
        return parse_invocation_response(response.content, source)

    def _post(self, body: bytes) -> httpx.Response:
        try:
            response = self._client.post(
                f"{self.base_url}/invocations",
                content=body,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
        except httpx.TransportError as error:
            raise _Transient(f"{type(error).__name__}: {error}") from None
        if response.status_code in _TRANSIENT_STATUS:
            raise _Transient(f"HTTP {response.status_code}")
        return response


def _refusal(status: int, body: bytes, source: str) -> InvalidInput | DependencyUnavailable:
    """A 4xx answer: the payload was refused, with the server's located problems when it sent them."""
    try:
        document: Any = json.loads(body)
    except json.JSONDecodeError:
        document = {}
    detail = str(document.get("detail", f"HTTP {status}")) if isinstance(document, dict) else f"HTTP {status}"
    if status in (400, 413, 415, 422):
        errors = document.get("errors", []) if isinstance(document, dict) else []
        problems = [
            Problem(str(e.get("pointer", "$")), str(e.get("detail", ""))) for e in errors if isinstance(e, dict)
        ]
        return InvalidInput(f"{source} refused the payload: {detail}", problems)
    return DependencyUnavailable(source, f"HTTP {status}: {detail}")


class SageMakerScores(_RemoteScores):
    """A SageMaker real-time endpoint serving the same contract (`invoke_endpoint`, JSON in and out)."""

    name = "sagemaker"

    def __init__(self, endpoint_name: str, client: Any) -> None:
        self.endpoint_name = endpoint_name
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> SageMakerScores:
        if not settings.sagemaker_endpoint:
            raise InvalidInput(
                "the sagemaker score provider needs an endpoint",
                [Problem("FRAUDAGENT_SAGEMAKER_ENDPOINT", "set it to the endpoint's name")],
            )
        config = Config(
            retries={"max_attempts": settings.scoring_max_attempts, "mode": "standard"},
            read_timeout=settings.scoring_timeout_s,
            connect_timeout=settings.scoring_timeout_s,
        )
        client = boto3.client("sagemaker-runtime", region_name=settings.aws_region, config=config)
        return cls(settings.sagemaker_endpoint, client)

    def _invoke(self, body: bytes) -> list[Score]:
        source = f"SageMaker endpoint {self.endpoint_name}"
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self.endpoint_name, ContentType="application/json", Accept="application/json", Body=body
            )
        except ClientError as error:
            raise _sagemaker_error(error, source) from None
        except BotoCoreError as error:
            raise DependencyUnavailable(source, type(error).__name__) from None
        return parse_invocation_response(response["Body"].read(), source)


def _sagemaker_error(error: ClientError, source: str) -> InvalidInput | DependencyUnavailable:
    """SageMaker's own ValidationError, or the container's 4xx relayed as ModelError, mean a refused payload."""
    code = error.response.get("Error", {}).get("Code", "ClientError")
    message = error.response.get("Error", {}).get("Message", "")
    container_status = int(error.response.get("OriginalStatusCode", 0) or 0)
    if code == "ValidationError" or (code == "ModelError" and 400 <= container_status < 500):
        return InvalidInput(f"{source} refused the payload: {message}", [])
    return DependencyUnavailable(source, f"{code}: {message}" if message else code)


def score_provider(settings: Settings) -> ScoreProvider:
    """The provider the settings choose."""
    if settings.score_provider == "http":
        return EndpointScores.from_settings(settings)
    if settings.score_provider == "sagemaker":
        return SageMakerScores.from_settings(settings)
    return StoredScores()


# --- the risk-scores tool --------------------------------------------------------------------------------------


def with_scores(events: Sequence[ScoredEvent], scores: Sequence[Score]) -> list[ScoredEvent]:
    """The events with `scores` in place of the stored ones (an event without a new score keeps its stored one)."""
    by_event = {s.event_id: s for s in scores}
    return [ScoredEvent(event=s.event, score=by_event.get(s.event.event_id, s.score)) for s in events]


def risk_scores(
    provider: ScoreProvider, *, events: Sequence[ScoredEvent], accounts: Sequence[Account]
) -> list[ScoredEvent]:
    """The events scored by `provider` (the stored provider returns them as stored)."""
    if provider.name == "stored":
        return list(events)
    return with_scores(events, provider.scores(events, accounts))


class RiskScoresInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


def risk_scores_tool(
    provider: ScoreProvider, *, events: Sequence[ScoredEvent], accounts: Sequence[Account]
) -> StructuredTool:
    """`risk_scores` bound to one case's events: each money-moving event's score and reason codes."""

    def risk_scores_of_the_case() -> dict[str, Any]:
        scored = risk_scores(provider, events=events, accounts=accounts)
        return {
            "scores": [
                {"id": f"score:{s.event.event_id}", **s.score.model_dump(mode="json", exclude={"event_id"})}
                for s in scored
                if s.score is not None
            ],
            "provider": provider.name,
        }

    return StructuredTool.from_function(
        func=risk_scores_of_the_case,
        name="risk_scores",
        description=(
            "The fraud model's score and reason codes for each of the case's money-moving events; cite as"
            " score:<event>."
        ),
        args_schema=RiskScoresInput,
    )
