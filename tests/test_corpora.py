"""The corpus readers on tiny synthetic copies of each release's layout: labels mapped to the
project's, speakers kept, what has no label left out, unexpected names refused."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from trainer.corpora import CORPORA, CorpusError, load_corpora


def _touch(root: Path, *relative: str) -> None:
    for name in relative:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # the readers go by names only; decoding comes later


def test_emodb_maps_letters_keeps_speakers_and_leaves_boredom_out(tmp_path: Path) -> None:
    _touch(tmp_path / "emodb", "03a01Wa.flac", "03a01Lb.flac", "16b10Td.wav", "08a02Ec.flac")
    clips = load_corpora(["emodb"], data_root=tmp_path)
    assert sorted((c.label, c.speaker) for c in clips) == [
        ("angry", "emodb:03"),
        ("disgust", "emodb:08"),
        ("sad", "emodb:16"),
    ]
    assert {c.corpus for c in clips} == {"emodb"}


def test_emovo_takes_the_actor_and_emotion_from_the_file_name(tmp_path: Path) -> None:
    _touch(tmp_path / "emovo", "f1/dis-f1-b1.flac", "m3/sor-m3-n5.flac", "m3/gio-m3-l2.wav")
    clips = load_corpora(["emovo"], data_root=tmp_path)
    assert sorted((c.label, c.speaker) for c in clips) == [
        ("disgust", "emovo:f1"),
        ("happy", "emovo:m3"),
        ("surprise", "emovo:m3"),
    ]


def test_turevdb_maps_calm_to_neutral_and_reads_the_speaker_number(tmp_path: Path) -> None:
    _touch(tmp_path / "turevdb", "Calm/1234_sk_acik.flac", "Angry/1157_ab_kapi.flac")
    clips = load_corpora(["turevdb"], data_root=tmp_path)
    assert Counter((c.label, c.speaker) for c in clips) == {
        ("neutral", "turevdb:1234"): 1,
        ("angry", "turevdb:1157"): 1,
    }


@pytest.mark.parametrize(
    ("corpus", "bad"),
    [("emodb", "03a01Xa.flac"), ("emovo", "f1/xyz-f1-b1.flac"), ("turevdb", "Bored/12_a_b.flac")],
)
def test_an_unexpected_name_is_refused_not_guessed(tmp_path: Path, corpus: str, bad: str) -> None:
    _touch(tmp_path / corpus, bad)
    with pytest.raises(CorpusError):
        load_corpora([corpus], data_root=tmp_path)


def test_every_named_corpus_is_readable_by_name_and_an_unknown_one_is_refused(
    tmp_path: Path,
) -> None:
    assert CORPORA == ("tess", "ravdess", "emodb", "emovo", "turevdb")
    with pytest.raises(CorpusError, match="turevdb"):
        load_corpora(["iemocap"], data_root=tmp_path)
