"""The embedded servers' weights are refused unless their sha256 matches (no server is started here; starting
and stopping them: tests/integration/test_services.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from fraudagent.cli.services import prepare_model, verify_model
from fraudagent.core.errors import DependencyUnavailable
from fraudagent.core.settings import Settings


def test_weights_with_another_sha256_are_refused(tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(DependencyUnavailable, match="sha256"):
        verify_model(Settings(weights_sha256=wrong))
    with pytest.raises(DependencyUnavailable, match="sha256"):
        prepare_model(Settings(cache_dir=tmp_path, weights_sha256=wrong))
    assert not list((tmp_path / "models").glob("*.gguf")), "a refused join leaves no model file behind"


def test_auto_draft_priorities_take_a_comma_list_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    for given, expected in (
        ("critical,high", ["critical", "high"]),
        ('["high", "critical"]', ["high", "critical"]),
        ("", []),
        (" low ", ["low"]),
    ):
        monkeypatch.setenv("FRAUDAGENT_AUTO_DRAFT_PRIORITIES", given)
        assert Settings().auto_draft_priorities == expected
    monkeypatch.setenv("FRAUDAGENT_AUTO_DRAFT_PRIORITIES", "critical,urgent")
    with pytest.raises(ValidationError):
        Settings()


def test_the_prompt_state_cache_keeps_one_row_of_logits_and_counts_all_it_keeps() -> None:
    """llama-cpp-python's RAM cache saved each state with up to 512 rows of logits (311 MB for Qwen2.5) and counted
    none of them against its size; ours keeps the last row, which `Llama.load_state` broadcasts, and counts it."""
    import numpy as np
    from llama_cpp.llama import LlamaState

    from fraudagent.cli.llama_server import CompactRAMCache

    def state(rows: int, fill: float) -> LlamaState:
        return LlamaState(
            input_ids=np.zeros(4096, dtype=np.intc),
            scores=np.full((rows, 1000), fill, dtype=np.single),
            n_tokens=rows,
            llama_state=b"\0" * 100_000,
            llama_state_size=100_000,
            seed=1,
        )

    one = 100_000 + 1000 * 4 + 4096 * 4  # llama.cpp's state, one row of logits, the token ids
    cache = CompactRAMCache(capacity_bytes=2 * one)
    cache[(1, 2, 3)] = state(300, 0.5)
    kept = cache[(1, 2, 3, 4)]  # the longest cached prefix
    assert kept.scores.shape == (1, 1000) and kept.scores.base is None
    assert cache.cache_size == one
    restored = np.zeros((512, 1000), dtype=np.single)
    restored[: kept.n_tokens, :] = kept.scores.copy()  # what Llama.load_state does with it
    assert restored[299, 0] == 0.5
    cache[(5, 6)] = state(10, 1.0)
    cache[(7, 8)] = state(10, 1.0)  # a third state passes the capacity: the least recently used goes
    assert (1, 2, 3) not in cache.cache_state and cache.cache_size == 2 * one
    cache[(5, 6, 9, 9)] = state(10, 1.0)  # begins with (5, 6): that state is covered and goes, nothing else does
    assert list(cache.cache_state) == [(7, 8), (5, 6, 9, 9)]


def test_a_completion_first_keeps_the_state_a_stopped_one_left_unsaved() -> None:
    """llama-cpp-python saves a state only when a generation ends by itself; a stream its client closed left its
    evaluated tokens in the context for the next request to overwrite. Patched, the next completion saves them first
    (keyed by the evaluated tokens only), and saves nothing when the cache already covers them."""
    import numpy as np
    from llama_cpp.llama_cache import LlamaRAMCache

    from fraudagent.cli.llama_server import keep_stopped_states

    class FakeLlama:
        longest_token_prefix = staticmethod(
            lambda a, b: next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        )

        def __init__(self) -> None:
            self.cache = LlamaRAMCache(capacity_bytes=1 << 20)
            self.input_ids = np.zeros(64, dtype=np.intc)
            self.n_tokens = 0
            self.saved: list[int] = []

        def save_state(self) -> object:
            self.saved.append(self.n_tokens)
            return SimpleNamespace(llama_state_size=10, n_tokens=self.n_tokens)

        def _create_completion(self, prompt: list[int], *, stop_after: int | None = None) -> Iterator[int]:
            evaluated = [*prompt]
            self.input_ids[: len(evaluated)] = evaluated
            self.n_tokens = len(evaluated)
            for token in range(100, 104):
                yield token
                if stop_after is not None and token - 100 + 1 >= stop_after:
                    return  # a stream closed by its client: no save (the generator is simply dropped)
                self.input_ids[self.n_tokens] = token
                self.n_tokens += 1
            self.cache[[*prompt, *range(100, 104)]] = self.save_state()  # ended by itself: saved

    keep_stopped_states(FakeLlama)
    llama = FakeLlama()
    list(llama._create_completion([1, 2, 3]))  # ran to its end: saved by itself
    assert llama.saved == [7]
    list(llama._create_completion([1, 2, 3, 100, 101, 102, 103, 9], stop_after=2))  # covered: nothing new kept
    assert llama.saved == [7]
    stopped = tuple(llama.input_ids[: llama.n_tokens].tolist())  # 8 prompt tokens + 1 generated, then it stopped
    assert len(stopped) == 9
    list(llama._create_completion([5, 6]))
    assert llama.saved == [7, 9, 6]  # the stopped one's 9 tokens kept before the new prompt overwrote them
    assert stopped in llama.cache.cache_state
