"""Speed benchmark: per-stage cost in process, HTTP throughput and latency, cold start, and
the paper's serving path in the same run.

    .venv/bin/python bench/speed.py [--quick]

Writes docs/performance.md and docs/performance.json. Server and load generator are pinned to
different cores (server: core 0; client: core 1) and talk over 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.audio import resample  # noqa: E402
from service.model import load_model  # noqa: E402
from service.settings import BUNDLED_MODEL  # noqa: E402
from trainer.corpora import default_data_root  # noqa: E402

DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent


def speech_like(seconds: float, rate: int) -> np.ndarray:
    """Real speech (a TESS clip, tiled) when the corpus is there; a harmonic tone otherwise."""
    source = default_data_root() / "tess" / "YAF_happy" / "YAF_ring_happy.flac"
    if source.exists():
        y, sr = sf.read(source, dtype="float32")
        y = resample(y, source_rate=sr, target_rate=rate)
    else:
        t = np.arange(rate) / rate
        y = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return np.resize(y, int(seconds * rate)).astype(np.float32)


def encode(y: np.ndarray, rate: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, rate, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def timed(fn, repeats: int) -> tuple[list[float], Any]:
    out, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t)
    return out, result


def stats_ms(values: list[float]) -> dict[str, float]:
    arr = np.array(values) * 1000
    return {
        "median": round(float(np.median(arr)), 4),
        "p99": round(float(np.percentile(arr, 99)), 4),
        "n": len(values),
    }


def in_process(model_path: Path, quick: bool) -> list[dict[str, Any]]:
    os.sched_setaffinity(0, {0})
    model = load_model(model_path)
    fs = model.feature_set
    rows = []
    durations = (1, 3, 10) if quick else (1, 3, 10, 60)
    rates = (16_000, 44_100) if quick else (16_000, 22_050, 44_100, 48_000)
    for seconds in durations:
        for rate in rates:
            for fmt in ("WAV", "FLAC"):
                data = encode(speech_like(seconds, rate), rate, fmt)
                repeats = max(5, int(200 / seconds)) if not quick else max(3, int(50 / seconds))
                dec, (y, sr) = timed(lambda: sf.read(io.BytesIO(data), dtype="float32"), repeats)
                res, y16 = timed(
                    lambda: resample(y, source_rate=sr, target_rate=fs.sample_rate), repeats
                )
                feat, x = timed(lambda: fs.extract(y16), repeats)
                inf, _ = timed(lambda: model.predict_proba(x), repeats)
                rows.append(
                    {
                        "seconds": seconds,
                        "rate": rate,
                        "format": fmt,
                        "decode": stats_ms(dec),
                        "resample": stats_ms(res),
                        "features": stats_ms(feat),
                        "inference": stats_ms(inf),
                    }
                )
    return rows


def feature_sets_3s() -> dict[str, dict[str, float]]:
    """Features + inference for a 3 s 16 kHz clip, per feature set, one core."""
    from service.features import FEATURE_SETS

    os.sched_setaffinity(0, {0})
    y = speech_like(3.0, 16_000)
    model = load_model(BUNDLED_MODEL)
    out = {}
    for name, fs in FEATURE_SETS.items():
        t, _ = timed(lambda fs=fs: fs.extract(y), 300)
        out[name] = stats_ms(t)
    inf, _ = timed(lambda: model.predict_proba(model.feature_set.extract(y)), 300)
    out["bundled model, features + inference"] = stats_ms(inf)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 120.0) -> float:
    import httpx

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise TimeoutError(url)


def start(cmd: list[str], env: dict[str, str], core: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["taskset", "-c", core, *cmd],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )


def rss_mb(pid: int) -> float:
    total = 0
    for p in [pid, *child_pids(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total = max(total, int(line.split()[1]))
        except FileNotFoundError:
            pass
    return total / 1024


def child_pids(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


async def load(
    url: str, body: bytes, concurrency: int, seconds: float, max_requests: int
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    files = {"file": ("clip.wav", body, "audio/wav")}

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline and len(latencies) < max_requests:
            t = time.perf_counter()
            r = await client.post(url, files=files)
            latencies.append(time.perf_counter() - t)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 2),
        "statuses": statuses,
    }


def http_bench(
    cmd: list[str], env: dict[str, str], levels: tuple[int, ...], seconds: float, label: str
) -> dict[str, Any]:
    os.sched_setaffinity(0, {1})  # the load generator on the other core
    port = free_port()
    env = {**env, "SER_PORT": str(port), "PORT": str(port)}
    proc = start([c.replace("{port}", str(port)) for c in cmd], env, core="0")
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}/healthz")
        body = encode(speech_like(3.0, 16_000), 16_000, "WAV")
        url = f"http://127.0.0.1:{port}/predict"
        asyncio.run(load(url, body, 1, 1.0, 20))  # warm-up
        runs = [asyncio.run(load(url, body, c, seconds, 20_000)) for c in levels]
        return {
            "label": label,
            "ready_s": round(ready, 2),
            "runs": runs,
            "rss_mb": round(rss_mb(proc.pid), 1),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def cold_start(numba_cache: str | None) -> dict[str, float]:
    import httpx

    port = free_port()
    env = {"SER_PORT": str(port), "SER_WORKERS": "1"}
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = numba_cache
    t0 = time.perf_counter()
    proc = start([str(BIN / "ser-serve")], env, core="0")
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}/readyz")
        body = encode(speech_like(3.0, 16_000), 16_000, "WAV")
        t1 = time.perf_counter()
        httpx.post(f"http://127.0.0.1:{port}/predict", files={"file": ("a.wav", body)}, timeout=60)
        first = time.perf_counter() - t1
        steady = []
        for _ in range(50):
            t = time.perf_counter()
            httpx.post(
                f"http://127.0.0.1:{port}/predict", files={"file": ("a.wav", body)}, timeout=60
            )
            steady.append(time.perf_counter() - t)
        return {
            "to_ready_s": round(ready, 3),
            "process_start_to_first_answer_s": round(time.perf_counter() - t0 - sum(steady), 3),
            "first_request_ms": round(1000 * first, 2),
            "steady_median_ms": round(1000 * statistics.median(steady), 2),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def trainer_extraction(quick: bool) -> dict[str, Any]:
    from trainer.corpora import read_ravdess, read_tess
    from trainer.extract import extract_corpus

    root = default_data_root()
    if not root.exists():
        return {"skipped": "no corpora"}
    clips = read_tess(root / "tess") + read_ravdess(root / "ravdess")
    if quick:
        clips = clips[::8]
    out = {}
    for name in ("mfcc40-mean", "speech-stats-v1"):
        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            extract_corpus(
                clips, feature_set=name, cache_dir=Path(cache), workers=2, progress=False
            )
            cold = time.perf_counter() - t
            t = time.perf_counter()
            extract_corpus(
                clips, feature_set=name, cache_dir=Path(cache), workers=2, progress=False
            )
            warm = time.perf_counter() - t
        out[name] = {
            "clips": len(clips),
            "clips_per_s": round(len(clips) / cold, 1),
            "cached_rerun_s": round(warm, 2),
        }
    return out


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 8.0
    report: dict[str, Any] = {"machine": machine(), "command": " ".join(["python", *sys.argv])}
    report["features_3s"] = feature_sets_3s()
    report["in_process"] = in_process(args.model, args.quick)
    levels = (1, 2, 4, 8, 16, 32)
    ours = [str(BIN / "ser-serve")]
    report["http"] = [
        http_bench(
            ours,
            {"SER_WORKERS": "1", "SER_MAX_INFLIGHT": "64", "SER_LOG_LEVEL": "WARNING"},
            levels,
            seconds,
            "ours, 1 worker, 1 core",
        )
    ]
    if not args.skip_baseline:
        report["http"].append(
            http_bench(
                [sys.executable, "-m", "bench.paper_baseline.server", "{port}"],
                {},
                (1, 4),
                seconds,
                "paper-style Flask + librosa + Keras, 1 core",
            )
        )
    report["cold_start"] = {
        "warm cache": cold_start(None),
        "empty numba cache": cold_start(tempfile.mkdtemp()),
    }
    report["trainer_extraction"] = trainer_extraction(args.quick)
    report["load_average_at_end"] = os.getloadavg()
    DOCS.mkdir(exist_ok=True)
    (DOCS / "performance.json").write_text(json.dumps(report, indent=1) + "\n")
    write_markdown(report)
    print((DOCS / "performance.md").read_text())


def write_markdown(r: dict[str, Any]) -> None:
    f3 = r["features_3s"]
    ours = r["http"][0]
    peak = max(ours["runs"], key=lambda x: x["rps"])
    at80 = min(
        (x for x in ours["runs"] if x["rps"] >= 0.8 * peak["rps"]), key=lambda x: x["concurrency"]
    )
    base = r["http"][1] if len(r["http"]) > 1 else None
    base_peak = max(base["runs"], key=lambda x: x["rps"]) if base else None
    ratio = f"{peak['rps'] / base_peak['rps']:.0f}x" if base_peak else "not run"
    cs = r["cold_start"]
    tx = r["trainer_extraction"]
    lines = [
        "# Performance",
        "",
        f"Command: `{r['command']}`. Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, "
        f"Python {r['machine']['python']}; load average at start {r['machine']['load_average_at_start']}, "
        f"at end {r['load_average_at_end']}. Server pinned to core 0, load generator to core 1, loopback only.",
        "",
        "## Targets",
        "",
        "| target | measured |",
        "|---|---|",
        f"| features + inference, 3 s 16 kHz clip, one core: <= 1 ms median | bundled model: "
        f"{f3['bundled model, features + inference']['median']:.2f} ms; mfcc40-mean features alone "
        f"{f3['mfcc40-mean']['median']:.2f} ms; speech-stats-v1 features alone {f3['speech-stats-v1']['median']:.2f} ms |",
        f"| HTTP >= 500 req/s per core, 3 s WAV | {peak['rps']} req/s at concurrency {peak['concurrency']} (1 worker, 1 core) |",
        f"| p99 <= 20 ms at 80% of peak | {at80['p99_ms']} ms at {at80['rps']} req/s (concurrency {at80['concurrency']}) |",
        f"| >= 20x the paper-style baseline | {ratio} ({base_peak['rps'] if base_peak else '-'} req/s for the baseline) |",
        f"| cold start to ready <= 2 s | {cs['warm cache']['to_ready_s']} s (empty numba cache: {cs['empty numba cache']['to_ready_s']} s) |",
        f"| first request <= 3x steady state | {cs['warm cache']['first_request_ms']} ms vs {cs['warm cache']['steady_median_ms']} ms |",
        f"| RSS per worker <= 250 MB | {ours['rss_mb']} MB after the load test |",
    ]
    if "skipped" not in tx:
        for name, v in tx.items():
            lines.append(
                f"| trainer extraction >= 500 clips/s on 2 cores ({name}) | {v['clips_per_s']} clips/s over "
                f"{v['clips']} clips; cached rerun {v['cached_rerun_s']} s |"
            )
    lines += [
        "",
        "## HTTP",
        "",
        "| server | concurrency | req/s | p50 ms | p99 ms | statuses |",
        "|---|---|---|---|---|---|",
    ]
    for h in r["http"]:
        for run in h["runs"]:
            lines.append(
                f"| {h['label']} | {run['concurrency']} | {run['rps']} | {run['p50_ms']} | {run['p99_ms']} | {run['statuses']} |"
            )
    lines += [
        "",
        "## In process, per stage (ms, median / p99, one core)",
        "",
        "| clip | rate | format | decode | resample | features | inference |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["in_process"]:
        cell = lambda k: f"{row[k]['median']:.3f} / {row[k]['p99']:.3f}"  # noqa: E731
        lines.append(
            f"| {row['seconds']} s | {row['rate']} | {row['format']} | {cell('decode')} | {cell('resample')} | "
            f"{cell('features')} | {cell('inference')} |"
        )
    lines += ["", "## Cold start", "", "```json", json.dumps(cs, indent=1), "```", ""]
    (DOCS / "performance.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
