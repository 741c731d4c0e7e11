"""The service image, built and run for real: read-only, non-root, answers, drains on SIGTERM.

Opt-in (``make test-container``; ``.ci/run`` runs it when ``../shared/tools/container-engine``
is there): it builds an image, which takes minutes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import encode, speech_like

pytestmark = pytest.mark.container
ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT.parent / "shared" / "tools" / "container-engine"
IMAGE = "ser-service:test"


@pytest.fixture(scope="module")
def docker_env() -> dict[str, str]:
    env = dict(os.environ)
    if shutil.which("docker") is None:
        pytest.skip("no docker client")
    if ENGINE.exists():
        up = subprocess.run([str(ENGINE), "up"], capture_output=True, text=True)
        if up.returncode != 0:
            pytest.skip(f"container engine did not start: {up.stderr[-400:]}")
        for line in up.stdout.splitlines():
            for part in line.removeprefix("export ").split():
                key, _, value = part.partition("=")
                env[key] = value
    build = subprocess.run(
        ["docker", "build", "-f", "docker/service.Dockerfile", "-t", IMAGE, "."],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    return env


def _docker(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, check=check)


@contextlib.contextmanager
def _running(docker_env: dict[str, str], *env: str) -> Iterator[tuple[str, str]]:
    """The image running read-only on a free port, ready; yields its name and URL."""
    name = f"ser-test-{os.getpid()}-{time.monotonic_ns()}"
    settings = [arg for value in ("SER_WORKERS=1", *env) for arg in ("-e", value)]
    _docker(
        docker_env,
        "run",
        "-d",
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/tmp",
        *settings,
        # No host port given: Docker binds a free one, read back below (no pick-then-bind race).
        "-p",
        "127.0.0.1::8000",
        IMAGE,
    )
    try:
        bound = _docker(docker_env, "port", name, "8000/tcp").stdout.split()[0]
        url = f"http://127.0.0.1:{bound.rsplit(':', 1)[1]}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the container was not ready within 90 s")
            time.sleep(0.5)
        yield name, url
    finally:
        _docker(docker_env, "rm", "-f", name, check=False)


def test_image_runs_read_only_as_non_root_and_drains(docker_env: dict[str, str]) -> None:
    with _running(docker_env) as (name, url):
        assert _docker(docker_env, "exec", name, "id", "-u").stdout.strip() == "10001"
        write = _docker(docker_env, "exec", name, "touch", "/app/x", check=False)
        assert write.returncode != 0 and "Read-only" in write.stderr
        clip = encode(speech_like(seconds=2.0, rate=44_100), rate=44_100, format="FLAC")
        answer = httpx.post(f"{url}/predict", files={"file": ("a.flac", clip)}, timeout=30)
        assert answer.status_code == 200 and answer.json()["label"]
        # A long request in flight while the container is stopped still completes.
        long_clip = encode(speech_like(seconds=240.0))
        result: dict[str, int] = {}

        def slow() -> None:
            response = httpx.post(
                f"{url}/predict?timeline=true", files={"file": ("l.wav", long_clip)}, timeout=60
            )
            result["status"] = response.status_code

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.5)
        _docker(docker_env, "stop", "-t", "30", name)
        thread.join(timeout=60)
        assert result.get("status") == 200
        state = _docker(
            docker_env, "inspect", name, "--format", "{{.State.ExitCode}}"
        ).stdout.strip()
        assert state in ("0", "143")


def test_image_serves_the_opt_in_accurate_model(docker_env: dict[str, str]) -> None:
    """Its encoder travels inside the installed package, and the image carries the model."""
    with _running(docker_env, "SER_MODEL_PATH=/app/models/ser-accurate.onnx") as (_, url):
        clip = encode(speech_like(seconds=2.0, rate=44_100), rate=44_100, format="FLAC")
        answer = httpx.post(f"{url}/predict", files={"file": ("a.flac", clip)}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"].startswith("ser-accurate-")
