"""The embedded model server: llama-cpp-python's OpenAI-compatible server, with a prompt-state cache that keeps to
its size.

llama-cpp-python 0.3.36's RAM cache (`--cache_type ram`) counts only llama.cpp's own state against `--cache_size`,
but every state it saves also carries the logits of up to n_batch prompt tokens (512 x 151,936 floats, 311 MB for
Qwen2.5), so a 256 MB setting let the server grow to 9.4 GB resident over the test suite. Those logits are never
read back: a restored state always decodes at least one token before it samples (`Llama._requires_eval`). This
cache keeps the last row only (`Llama.load_state` broadcasts it over the rows it restores) and counts everything a
state keeps, so `FRAUDAGENT_LLAMA_PROMPT_CACHE_MB` bounds the memory it says; a state that a longer one begins with
is dropped when the longer one is saved.

It also keeps what a stopped request evaluated. llama-cpp-python saves a state only when a generation runs to its
end; a stream its client closed (a draft preempted for a chat turn, a chat turn that gave the slot to a newer one)
left its evaluated prompt in the context, where the next request overwrote it, so resuming cost the whole prompt
again. Here the next request first saves that state (`keep_stopped_states`), and the resumed request finds it.

    python -m fraudagent.cli.llama_server <llama_cpp.server's arguments>
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

import llama_cpp
from llama_cpp.llama_cache import LlamaRAMCache


class CompactRAMCache(LlamaRAMCache):
    """LlamaRAMCache whose states keep one row of logits, and whose size counts all that a state keeps."""

    @staticmethod
    def kept_bytes(state: Any) -> int:
        return int(state.llama_state_size) + int(state.scores.nbytes) + int(state.input_ids.nbytes)

    @property
    def cache_size(self) -> int:
        return sum(self.kept_bytes(state) for state in self.cache_state.values())

    def __setitem__(self, key: Sequence[int], value: Any) -> None:
        value.scores = value.scores[-1:].copy()  # a view would keep the whole array alive
        key = tuple(key)
        # A state whose tokens begin a longer one's is covered by it (a lookup restores the longer state and keeps
        # the common part), so it goes: answers that stop and go on many times would otherwise fill the cache with
        # copies of themselves and push out other analysts' case prefixes.
        for shorter in [k for k in self.cache_state if len(k) < len(key) and key[: len(k)] == k]:
            del self.cache_state[shorter]
        super().__setitem__(key, value)
        print(
            f"prompt-state cache: {len(self.cache_state)} states, {self.cache_size >> 20} MiB of"
            f" {self.capacity_bytes >> 20} MiB",
            file=sys.stderr,
            flush=True,
        )


def keep_stopped_states(llama_class: Any) -> None:
    """Make each completion first save the context that the one before it left unsaved (when a cache is set)."""
    generate = llama_class._create_completion

    def _create_completion(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        if self.cache is not None and self.n_tokens > 0:
            evaluated = tuple(self.input_ids[: self.n_tokens].tolist())
            key = self.cache._find_longest_prefix_key(evaluated)
            if key is None or llama_class.longest_token_prefix(key, evaluated) < len(evaluated):
                state = self.save_state()
                self.cache[evaluated] = state
                kept = f"prompt-state cache: kept a stopped request's {len(evaluated)} tokens"
                print(kept, file=sys.stderr, flush=True)
        yield from generate(self, *args, **kwargs)

    llama_class._create_completion = _create_completion


def main() -> None:
    # The server builds its cache from this name when a model loads (llama_cpp/server/model.py).
    llama_cpp.LlamaRAMCache = CompactRAMCache  # type: ignore[misc]
    keep_stopped_states(llama_cpp.Llama)
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
