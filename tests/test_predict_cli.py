from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from service.predict_cli import find_audio, main
from tests.helpers import encode, speech_like


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").mkdir()
    (tmp_path / "a" / "one.wav").write_bytes(encode(speech_like(freq=150.0, seconds=1.0)))
    (tmp_path / "a" / "b" / "two.flac").write_bytes(
        encode(speech_like(freq=400.0, seconds=1.0), format="FLAC")
    )
    (tmp_path / "a" / "b" / "broken.wav").write_bytes(b"RIFF....not audio")
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    return tmp_path / "a"


def test_find_audio_recurses_and_filters(folder) -> None:
    names = [p.name for p in find_audio([str(folder)])]
    assert names == ["one.wav", "broken.wav", "two.flac"] or sorted(names) == [
        "broken.wav",
        "one.wav",
        "two.flac",
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_jsonl_output_with_per_file_errors(folder, tiny_model, tmp_path, workers) -> None:
    out = tmp_path / "out.jsonl"
    code = main(
        [
            str(folder),
            "--model",
            str(tiny_model),
            "--output",
            str(out),
            "--workers",
            str(workers),
            "--no-progress",
        ]
    )
    assert code == 0
    records = {
        json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line)
        for line in out.read_text().splitlines()
    }
    assert set(records) == {"one.wav", "two.flac", "broken.wav"}
    assert records["broken.wav"]["error"] == "unsupported_format"
    assert set(records["broken.wav"]) == {"path", "error", "detail"}
    for name in ("one.wav", "two.flac"):
        assert records[name]["label"] in records[name]["probabilities"]
        assert records[name]["model"] == "tiny-0" and "timing_ms" not in records[name]
        assert sum(records[name]["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_csv_output(folder, tiny_model, tmp_path) -> None:
    out = tmp_path / "out.csv"
    assert (
        main(
            [
                str(folder / "one.wav"),
                "--model",
                str(tiny_model),
                "--format",
                "csv",
                "--output",
                str(out),
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and rows[0]["label"] and float(rows[0]["p_angry"]) >= 0
    assert rows[0]["model"] == "tiny-0"
    assert float(rows[0]["speech_s"]) == pytest.approx(1.0, abs=0.05)


def test_cli_runs_as_a_program_without_tensorflow(folder, tiny_model) -> None:
    code = (
        "import sys; from service.predict_cli import main; rc = main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules and 'trainer' not in sys.modules; "
        "assert 'matplotlib' not in sys.modules; sys.exit(rc)"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(folder / "one.wav"),
            "--model",
            str(tiny_model),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["label"]
    assert "1 classified, 0 failed" in done.stderr


@pytest.mark.parametrize(("workers", "fmt"), [(1, "jsonl"), (2, "csv")])
def test_timeline_option_gives_the_speech_segments(tiny_model, tmp_path, workers, fmt) -> None:
    from tests.test_timeline import _recording

    y, spans = _recording()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "call.wav").write_bytes(encode(y))
    (tmp_path / "in" / "short.wav").write_bytes(encode(speech_like(freq=200.0, seconds=1.0)))
    out = tmp_path / f"out.{fmt}"
    args = [str(tmp_path / "in"), "--model", str(tiny_model), "--output", str(out)]
    code = main([*args, "--workers", str(workers), "--format", fmt, "--timeline", "--no-progress"])
    assert code == 0
    if fmt == "csv":
        rows = list(csv.DictReader(out.read_text().splitlines()))
        timelines = {r["path"].rsplit("/", 1)[1]: json.loads(r["timeline"]) for r in rows}
    else:
        records = [json.loads(line) for line in out.read_text().splitlines()]
        timelines = {r["path"].rsplit("/", 1)[1]: r["timeline"] for r in records}
    segments = timelines["call.wav"]["segments"]
    assert [round(s["start"]) for s in segments] == [round(start) for start, _ in spans]
    assert all(s["label"] in s["probabilities"] for s in segments)
    # A tightly cut utterance (no quieter stretch around it) is speech from end to end.
    short = timelines["short.wav"]
    assert short["summary"]["duration_s"] == pytest.approx(1.0, abs=0.01)
    assert [(s["start"], s["end"]) for s in short["segments"]] == [(0.0, 1.0)]


def speech_with_pauses(rate: int = 16_000) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """14 s of faint noise with three voiced bursts at known times: shape ``(n,)``, float32."""
    rng = np.random.default_rng(1)
    y = (0.001 * rng.standard_normal(14 * rate)).astype(np.float32)
    spans = [(0.5, 2.5), (4.0, 7.0), (9.0, 12.5)]
    for i, (start, end) in enumerate(spans):
        burst = speech_like(freq=140.0 + 90 * i, seconds=end - start, seed=i)
        y[int(start * rate) : int(start * rate) + burst.size] += burst
    return y, spans


def _pixels_of(image: np.ndarray, hex_colour: str) -> int:
    rgb = (image[..., :3] * 255).round().astype(int)
    want = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return int(np.all(rgb == want, axis=-1).sum())


def test_plot_draws_the_timeline(tiny_model, tmp_path, capsys) -> None:
    import matplotlib.image  # the dev install has it (the trainer extra)

    from service.timeline_plot import SILENCE_COLOUR, emotion_colour

    y, spans = speech_with_pauses()
    clip, png, out = tmp_path / "call.wav", tmp_path / "call.png", tmp_path / "out.jsonl"
    clip.write_bytes(encode(y))
    args = [str(clip), "--model", str(tiny_model), "--timeline", "--plot", str(png)]
    assert main([*args, "--output", str(out), "--no-progress"]) == 0
    assert f"timeline drawn in {png}" in capsys.readouterr().err
    segments = json.loads(out.read_text())["timeline"]["segments"]
    assert len(segments) == len(spans)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    image = matplotlib.image.imread(str(png))
    height, width = image.shape[:2]
    assert 800 <= width <= 2000 and 300 <= height <= 1200
    # The strip's fills are the table's exact colours: each segment's emotion, and silence.
    for label in {s["label"] for s in segments}:
        assert _pixels_of(image, emotion_colour(label)) > 2_000, label
    assert _pixels_of(image, SILENCE_COLOUR) > 2_000


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["ONE", "--plot", "x.png"], "add --timeline"),
        (["ONE", "TWO", "--timeline", "--plot", "x.png"], "exactly one audio file"),
        (["FOLDER", "--timeline", "--plot", "x.png"], "exactly one audio file"),
        (["ONE", "--timeline", "--plot", "x.txt"], "ends in .png"),
    ],
)
def test_plot_usage_errors(
    folder, tiny_model, tmp_path, capsys, monkeypatch, extra, message
) -> None:
    monkeypatch.chdir(tmp_path)
    paths = {"ONE": str(folder / "one.wav"), "TWO": str(folder / "b" / "two.flac")}
    argv = [paths.get(a, str(folder) if a == "FOLDER" else a) for a in extra]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--model", str(tiny_model), "--no-progress"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ser-predict") and message in err
    assert not list(tmp_path.glob("x.*"))


def test_plot_without_matplotlib_says_what_to_install(
    folder, tiny_model, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    png = tmp_path / "x.png"
    args = [str(folder / "one.wav"), "--timeline", "--plot", str(png)]
    assert main([*args, "--model", str(tiny_model), "--no-progress"]) == 2
    assert "pip install 'ser[plot]'" in capsys.readouterr().err
    assert not png.exists()
