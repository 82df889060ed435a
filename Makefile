# The two commands: `make demo` (the whole path on the embedded defaults) and `make test`.
.PHONY: setup demo test clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/fraudagent demo

test: setup
	.venv/bin/python -m pytest

clean:
	rm -rf .venv node_modules .data
