"""ser-batch: the Ray job scores like POST /predict, one row per input, and resumes.

A local Ray (two CPUs, loopback only) is started once for the module; each job costs a few
seconds (the actors' start). The cluster test starts a second Ray in a subprocess and runs the
command against its address.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

pytest.importorskip("ray", reason="ser-batch needs the batch extra (make test installs it)")

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from service.batch import rows  # noqa: E402
from service.batch.cli import main  # noqa: E402
from service.batch.inputs import InputError, list_inputs  # noqa: E402
from service.batch.job import ray_runtime  # noqa: E402
from service.batch.output import OutputError, open_output  # noqa: E402
from service.batch.scorer import Scorer  # noqa: E402
from service.model import load_model  # noqa: E402
from tests.helpers import coloured_noise, encode, speech_like  # noqa: E402

RATE = 16_000
#: The conftest app answers 413 over 5 s; the batch job is given the same limit.
MAX_SECONDS = "5"


def _speech_like() -> np.ndarray:
    """20 s: three voice-like bursts between stretches of faint noise (three speech segments)."""
    rng = np.random.default_rng(0)
    y = (0.001 * rng.standard_normal(20 * RATE)).astype(np.float32)
    for i, (start, end) in enumerate([(1.0, 2.5), (4.0, 9.0), (12.0, 12.8)]):
        burst = speech_like(freq=150.0 + 80 * i, seconds=end - start, seed=i)
        y[int(start * RATE) : int(start * RATE) + burst.size] += burst
    return y


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    (root / "sub").mkdir()
    (root / "one.wav").write_bytes(encode(speech_like(freq=150.0, seconds=1.0)))
    stereo = speech_like(freq=400.0, seconds=1.5, rate=44_100, channels=2)
    (root / "two.flac").write_bytes(encode(stereo, rate=44_100, format="FLAC"))
    (root / "sub" / "three.wav").write_bytes(
        encode(speech_like(freq=260.0, seconds=0.8, rate=8_000), rate=8_000)
    )
    (root / "sub" / "broken.wav").write_bytes(b"RIFF....not audio at all")
    (root / "sub" / "empty.wav").write_bytes(b"")
    (root / "sub" / "long.wav").write_bytes(encode(speech_like(freq=200.0, seconds=6.0)))
    (root / "notes.txt").write_text("not audio: not listed")
    return root


@pytest.fixture(scope="module")
def timeline_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("calls")
    (root / "call.wav").write_bytes(encode(_speech_like(), subtype="PCM_16"))
    # Noise alone: no speech, so no emotion (422 no_speech from the API).
    noise = coloured_noise(seconds=3.0, level_db=-40.0)
    (root / "noise.wav").write_bytes(encode(noise, subtype="FLOAT"))
    (root / "broken.wav").write_bytes(b"RIFF....not audio at all")
    return root


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    with ray_runtime(None, num_cpus=2):
        yield


def _run(*args: str | Path, model: Path) -> int:
    return main([*map(str, args), "--model", str(model), "--workers", "2", "--no-progress"])


def _audio_files(folder: Path) -> set[str]:
    suffixes = {".wav", ".flac"}
    return {str(p) for p in folder.rglob("*") if p.suffix in suffixes}


def _read(out: Path) -> list[dict[str, Any]]:
    """Rows of any output format, with CSV cells converted back to numbers and nulls."""
    if out.suffix == ".parquet":
        return pq.read_table(out).to_pylist()
    if out.suffix == ".jsonl":
        return [json.loads(line) for line in out.read_text().splitlines()]
    typed = []
    for row in csv.DictReader(out.open(newline="")):
        typed.append({k: _cell(k, v) for k, v in row.items()})
    return typed


def _cell(key: str, value: str) -> Any:
    if value == "":
        return None
    if key in {"path", "label", "model", "error", "detail"}:
        return value
    return int(value) if key == "segment" else float(value)


def _by_path(table: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {row["path"]: row for row in table}
    assert len(found) == len(table), "a path has more than one row"
    return found


@pytest.fixture(scope="module")
def parquet_out(
    local_ray: None, folder: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("out") / "results.parquet"
    assert _run(folder, "--out", out, "--max-seconds", MAX_SECONDS, model=tiny_model) == 0
    return out


def test_one_row_per_input_with_the_answer_of_post_predict(
    parquet_out: Path, folder: Path, tiny_model: Path, client: TestClient
) -> None:
    table = pq.read_table(parquet_out)
    model = load_model(tiny_model)
    labels = model.labels
    assert table.schema.names == rows.columns(labels, timeline=False)
    found = _by_path(table.to_pylist())
    assert set(found) == _audio_files(folder)
    codes = set()
    for path, row in found.items():
        answer = client.post("/predict", files={"file": (Path(path).name, Path(path).read_bytes())})
        body = answer.json()
        if answer.status_code == 200:
            assert row["error"] is None and row["detail"] is None
            assert row["label"] == body["label"]
            assert row["confidence"] == pytest.approx(body["confidence"], rel=1e-9)
            assert {k: row[f"p_{k}"] for k in labels} == pytest.approx(
                body["probabilities"], rel=1e-9
            )
            for key in ("duration_s", "speech_s", "model"):
                assert row[key] == body[key], key
        else:
            # The API's code and detail for the same bytes.
            assert (row["error"], row["detail"]) == (body["error"], body["detail"]), path
            assert row["label"] is None and row["p_angry"] is None
            assert row["model"] == model.version
            codes.add((answer.status_code, row["error"]))
    # The folder holds three kinds of bad file: each is its own API error.
    assert {status for status, _ in codes} == {413, 415, 422}


def test_a_rerun_scores_only_the_rows_that_are_missing(
    parquet_out: Path, folder: Path, tiny_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results.parquet"
    shutil.copytree(parquet_out, out)
    (part,) = out.glob("part-*.parquet")
    full = pq.read_table(part)
    lost = {str(folder / "one.wav"), str(folder / "sub" / "broken.wav")}
    kept = full.filter(pc.invert(pc.is_in(full["path"], pa.array(sorted(lost)))))
    assert kept.num_rows == full.num_rows - 2
    pq.write_table(kept, part)
    (out / ".part-killed-run.parquet.tmp").write_bytes(b"half a part")

    assert _run(folder, "--out", out, "--max-seconds", MAX_SECONDS, model=tiny_model) == 0
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 2 and not list(out.glob(".*.tmp"))
    assert set(pq.read_table(parts[1])["path"].to_pylist()) == lost
    assert _by_path(_read(out)) == _by_path(full.to_pylist())


def test_csv_output_resumes_after_a_record_cut_short(
    parquet_out: Path, folder: Path, tiny_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results.csv"
    assert _run(folder, "--out", out, "--max-seconds", MAX_SECONDS, model=tiny_model) == 0
    expected = _by_path(_read(parquet_out))
    assert _by_path(_read(out)) == expected
    # A job killed while writing: the last record is cut in the middle.
    text = out.read_text()
    out.write_text(text[: len(text) - 40])

    assert _run(folder, "--out", out, "--max-seconds", MAX_SECONDS, model=tiny_model) == 0
    assert _by_path(_read(out)) == expected


def test_jsonl_output_and_a_rerun_with_nothing_left(
    parquet_out: Path, folder: Path, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "results.jsonl"
    assert _run(folder, "--out", out, "--max-seconds", MAX_SECONDS, model=tiny_model) == 0
    assert _by_path(_read(out)) == _by_path(_read(parquet_out))
    before = out.read_bytes()
    capsys.readouterr()
    assert _run(folder, "--out", out, "--max-seconds", MAX_SECONDS, model=tiny_model) == 0
    assert out.read_bytes() == before
    assert f"0 files scored (0.00 h of audio), 0 errors, {len(_audio_files(folder))} already" in (
        capsys.readouterr().err
    )


def test_timeline_rows_per_speech_segment(
    local_ray: None, timeline_folder: Path, tiny_model: Path, tmp_path: Path, client: TestClient
) -> None:
    out = tmp_path / "segments.jsonl"
    assert _run(timeline_folder, "--out", out, "--timeline", model=tiny_model) == 0
    table = _read(out)
    labels = load_model(tiny_model).labels
    assert list(table[0]) == rows.columns(labels, timeline=True)

    call = str(timeline_folder / "call.wav")
    data = Path(call).read_bytes()
    noise_bytes = (timeline_folder / "noise.wav").read_bytes()
    body = client.post("/predict?timeline=true", files={"file": ("call.wav", data)}).json()
    segments = [row for row in table if row["path"] == call]
    assert len(segments) == len(body["timeline"]["segments"]) == 3
    for i, (row, expected) in enumerate(zip(segments, body["timeline"]["segments"], strict=True)):
        assert row["segment"] == i and (row["start"], row["end"]) == (
            expected["start"],
            expected["end"],
        )
        assert row["label"] == expected["label"]
        assert {k: row[f"p_{k}"] for k in labels} == pytest.approx(
            expected["probabilities"], rel=1e-9
        )
        assert (row["duration_s"], row["speech_s"]) == (body["duration_s"], body["speech_s"])
        assert row["error"] is None

    (noise,) = [row for row in table if row["path"].endswith("noise.wav")]
    assert noise["segment"] is None and noise["label"] is None
    noise_answer = client.post("/predict?timeline=true", files={"file": ("n.wav", noise_bytes)})
    assert noise_answer.status_code == 422
    assert (noise["error"], noise["detail"]) == (
        noise_answer.json()["error"],
        noise_answer.json()["detail"],
    )
    assert noise["error"] == "no_speech"
    (broken,) = [row for row in table if row["path"].endswith("broken.wav")]
    assert broken["error"] == "unsupported_format" and broken["segment"] is None
    assert len(table) == 3 + 1 + 1

    # A timeline output is not a per-file output: mixing them is refused before any work.
    assert _run(timeline_folder, "--out", out, model=tiny_model) == 2


# Inputs, outputs and the worker, without Ray.


def test_inputs_from_folders_manifests_and_file_uris(folder: Path, tmp_path: Path) -> None:
    listed = list_inputs([str(folder)])
    assert set(listed) == _audio_files(folder) and all(Path(p).is_absolute() for p in listed)
    assert listed.index(str(folder / "one.wav")) < listed.index(str(folder / "sub" / "three.wav"))

    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,label\n"
        f"{os.path.relpath(folder / 'one.wav', tmp_path)},angry\n"
        f"{folder / 'two.flac'},sad\n"
        "missing.wav,happy\n"
    )
    from_manifest = [
        str(folder / "one.wav"),
        str(folder / "two.flac"),
        str(tmp_path / "missing.wav"),
    ]
    assert list_inputs([str(manifest)]) == from_manifest
    # Duplicates are scored once; a file named directly is kept whatever its suffix.
    both = list_inputs([str(manifest), str(folder / "one.wav"), str(folder / "notes.txt")])
    assert both == [*from_manifest, str(folder / "notes.txt")]

    uri = f"file://{folder}"
    assert set(list_inputs([uri])) == {f"file://{p}" for p in _audio_files(folder)}
    # Relative entries of a manifest read through a URI are relative to its folder there.
    assert list_inputs([f"file://{manifest}"]) == [
        f"file://{folder / 'one.wav'}",
        str(folder / "two.flac"),
        f"file://{tmp_path / 'missing.wav'}",
    ]

    (tmp_path / "nopath.csv").write_text("file,label\na.wav,sad\n")
    with pytest.raises(InputError, match="'path' column"):
        list_inputs([str(tmp_path / "nopath.csv")])


def test_the_worker_reads_uris_and_turns_every_failure_into_a_row(
    folder: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scorer = Scorer(tiny_model.read_bytes(), tiny_model.name)
    (local,) = scorer.score_all([str(folder / "two.flac")]).to_pylist()
    (via_uri,) = scorer.score_all([f"file://{folder / 'two.flac'}"]).to_pylist()
    assert via_uri["path"] == f"file://{local['path']}"
    assert {**local, "path": None} == {**via_uri, "path": None}
    assert local["error"] is None and local["label"] in scorer.model.labels

    (missing,) = scorer.score_all([str(folder / "nope.wav")]).to_pylist()
    assert missing["error"] == "FileNotFoundError" and missing["label"] is None

    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("service.batch.scorer.classify_clip", bug)
    table = scorer.score_all(np.array([str(folder / "one.wav")]))
    assert table.schema == scorer.schema
    assert table.to_pylist()[0]["error"] == rows.INTERNAL_ERROR
    assert table.to_pylist()[0]["detail"] == "RuntimeError: a bug"


def test_a_cut_jsonl_record_drops_the_rows_of_its_recording(tmp_path: Path) -> None:
    labels = ("sad", "happy")
    schema = rows.schema(labels, timeline=True)
    out = tmp_path / "segments.jsonl"
    done = [{"path": "a.wav", "segment": None, "duration_s": 1.0}]
    partial = [{"path": "b.wav", "segment": i, "label": "sad"} for i in range(2)]
    with open_output(out, schema) as output:
        output.write(rows.to_table(done + partial, schema))
    text = out.read_text()
    out.write_text(text + '{"path": "b.wav", "segment": 2, "la')  # killed mid-record

    with open_output(out, schema) as output:
        assert output.done == {"a.wav"}
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == ["a.wav"]


def test_parquet_parts_are_written_during_the_job_not_only_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.batch.output.FLUSH_ROWS", 2)
    schema = rows.schema(("sad", "happy"), timeline=False)
    out = tmp_path / "r.parquet"
    output = open_output(out, schema)
    for name in ("a.wav", "b.wav", "c.wav"):
        output.write(rows.to_table([{"path": name}], schema))
    # Killed here (no close): the first two rows are safe in a whole part file.
    (part,) = out.glob("part-*.parquet")
    assert pq.read_table(part)["path"].to_pylist() == ["a.wav", "b.wav"]
    assert open_output(out, schema).done == {"a.wav", "b.wav"}
    output.close()
    assert open_output(out, schema).done == {"a.wav", "b.wav", "c.wav"}


def test_outputs_that_cannot_be_used_are_refused(tmp_path: Path) -> None:
    schema = rows.schema(("sad", "happy"), timeline=False)
    with pytest.raises(OutputError, match="must end in"):
        open_output(tmp_path / "results.xlsx", schema)
    (tmp_path / "file.parquet").write_bytes(b"PAR1")
    with pytest.raises(OutputError, match="folder of part files"):
        open_output(tmp_path / "file.parquet", schema)
    with open_output(tmp_path / "r.csv", schema) as output:
        output.write(rows.to_table([{"path": "a.wav"}], schema))
    other = rows.schema(("sad", "happy", "angry"), timeline=False)
    with pytest.raises(OutputError, match="other columns"):
        open_output(tmp_path / "r.csv", other)


def test_nothing_to_score_exits_2_before_ray(tmp_path: Path, tiny_model: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert _run(tmp_path / "empty", "--out", tmp_path / "r.jsonl", model=tiny_model) == 2
    assert _run(tmp_path / "empty", "--out", tmp_path / "r.txt", model=tiny_model) == 2
    assert _run(tmp_path, "--out", tmp_path / "r.csv", model=tmp_path / "none.onnx") == 2


# A cluster: a Ray head started as an operator would (`ray start --head`), joined through its
# Ray Client port (ray://), where Ray Data's executor runs on the cluster, not in the command.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ray_head() -> Iterator[tuple[str, dict[str, str], Path]]:
    """A two-CPU Ray head on loopback: its ray:// address, the environment (with the
    cluster's token) a client needs, and its folder (logs). Stopped with SIGINT, as Ctrl-C
    stops ``ray start --block``."""
    env = dict(
        os.environ,
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # one machine: loopback only
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=uuid.uuid4().hex,
        # The head starts a server process per client; Ray gives it 30 s, which a two-core
        # machine busy with other work has been seen to miss.
        RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="120",
    )
    client_port = _free_port()
    # A short folder of its own: Ray's socket paths must stay under 108 bytes.
    temp = Path(tempfile.mkdtemp(prefix="ser-ray-"))
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block"]
    command += ["--port", str(_free_port()), "--ray-client-server-port", str(client_port)]
    command += ["--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"]
    log = (temp / "head.log").open("w")
    head = subprocess.Popen(
        [*command, "--temp-dir", str(temp)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while "Ray runtime started" not in (temp / "head.log").read_text():
            assert head.poll() is None and time.monotonic() < deadline, (
                temp / "head.log"
            ).read_text()
            time.sleep(0.5)
        yield f"ray://127.0.0.1:{client_port}", env, temp
    finally:
        head.send_signal(signal.SIGINT)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def test_the_command_on_a_ray_client_address(
    ray_head: tuple[str, dict[str, str], Path],
    parquet_out: Path,
    folder: Path,
    tiny_model: Path,
    tmp_path: Path,
) -> None:
    address, env, temp = ray_head
    out = tmp_path / "cluster.parquet"
    command = [sys.executable, "-m", "service.batch.cli", str(folder), "--out", str(out)]
    command += ["--address", address, "--model", str(tiny_model), "--max-seconds", MAX_SECONDS]
    for _attempt in range(3):
        done = subprocess.run(
            [*command, "--no-progress"], env=env, capture_output=True, text=True, timeout=300
        )
        # Ray's per-client server process has been seen to die at start on a busy machine
        # (its own error, before our code runs): that start is retried, nothing else is.
        if "Starting Ray client server failed" not in done.stderr:
            break
    server_logs = "".join(
        f"--- {log.name}\n{log.read_text()[-2000:]}"
        for log in temp.glob("session_*/logs/ray_client_server*")
    )
    assert done.returncode == 0, done.stderr[-3000:] + server_logs
    assert "(RemoteDriver pid=" in done.stderr  # the dataset ran in an actor of the cluster
    assert _by_path(_read(out)) == _by_path(_read(parquet_out))
