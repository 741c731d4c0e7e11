from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from service.audio import decode_audio
from service.features import (
    FEATURE_SETS,
    SpeechStats,
    StatsWithEncoder,
    StatsWithEncoderConfig,
    get_feature_set,
)
from tests.helpers import tone
from trainer.corpora import CorpusError, read_manifest, read_ravdess, read_tess
from trainer.evaluate import classification_metrics, speaker_folds, stratified_split
from trainer.extract import extract_corpus

MFCC = get_feature_set("mfcc40-mean")


def _write(
    path: Path, *, freq: float = 200.0, seconds: float = 0.3, rate: int = 16_000, fmt: str = "WAV"
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(freq=freq, seconds=seconds, rate=rate), rate, format=fmt)


def test_tess_reader_trusts_file_names_and_maps_labels(tmp_path) -> None:
    _write(tmp_path / "OAF_Pleasant_surprise" / "OAF_back_ps.wav")
    _write(tmp_path / "YAF_fear" / "YAF_dog_fear.flac", fmt="FLAC")
    _write(tmp_path / "OAF_neutral" / "OA_bite_neutral.wav")
    _write(tmp_path / "weird_folder" / "YAF_kite_angry.wav")
    clips = {c.path.name: c for c in read_tess(tmp_path)}
    assert clips["OAF_back_ps.wav"].label == "surprise"
    assert clips["YAF_dog_fear.flac"].label == "fear"
    assert clips["OA_bite_neutral.wav"].speaker == "tess:OAF"
    assert clips["YAF_kite_angry.wav"].speaker == "tess:YAF"


def test_ravdess_reader_parses_names_and_maps_calm(tmp_path) -> None:
    _write(tmp_path / "Actor_01" / "03-01-02-01-01-01-01.wav")  # calm
    _write(tmp_path / "Actor_02" / "03-01-06-02-02-01-02.flac", fmt="FLAC")  # fearful
    _write(tmp_path / "Actor_02" / "03-01-08-01-01-01-02.wav")  # surprised
    _write(tmp_path / "Actor_02" / "01-01-08-01-01-01-02.wav")  # video modality: skipped
    mapped = sorted((c.label, c.speaker) for c in read_ravdess(tmp_path))
    assert mapped == [("fear", "ravdess:02"), ("neutral", "ravdess:01"), ("surprise", "ravdess:02")]
    assert {c.label for c in read_ravdess(tmp_path, calm_as=None)} == {"fear", "surprise"}
    assert {c.label for c in read_ravdess(tmp_path, native_labels=True)} == {
        "calm",
        "fearful",
        "surprised",
    }


def test_bad_corpora_raise_corpus_error(tmp_path) -> None:
    with pytest.raises(CorpusError):
        read_tess(tmp_path / "missing")
    _write(tmp_path / "t" / "not_a_tess_name.wav")
    with pytest.raises(CorpusError):
        read_tess(tmp_path / "t")


def test_manifest_reader(tmp_path) -> None:
    _write(tmp_path / "a.wav")
    _write(tmp_path / "sub" / "b.flac", fmt="FLAC")
    (tmp_path / "m.csv").write_text("path,label,speaker\na.wav,happy,s1\nsub/b.flac,Sad,\n")
    clips = read_manifest(tmp_path / "m.csv")
    assert [(c.label, c.path.exists()) for c in clips] == [("happy", True), ("sad", True)]
    assert clips[0].speaker == "m:s1" and clips[1].speaker.startswith("m:unknown")
    (tmp_path / "bad.csv").write_text("path,label\na.wav,bored\n")
    with pytest.raises(CorpusError, match="bored"):
        read_manifest(tmp_path / "bad.csv")


def test_metrics_are_correct_on_a_known_case() -> None:
    labels = ["a", "b", "c"]
    y_true = ["a", "a", "a", "a", "b", "b", "c", "c"]
    y_pred = ["a", "a", "a", "b", "b", "a", "c", "c"]
    m = classification_metrics(y_true, y_pred, labels)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["unweighted_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    assert m["confusion"] == [[3, 1, 0], [1, 1, 0], [0, 0, 2]]
    f1_a = 2 * (3 / 4 * 3 / 4) / (3 / 4 + 3 / 4)
    f1_b = 2 * (1 / 2 * 1 / 2) / 1.0
    assert m["macro_f1"] == pytest.approx((f1_a + f1_b + 1.0) / 3)


def test_stratified_split_is_reproducible_and_stratified() -> None:
    labels = ["x"] * 50 + ["y"] * 30
    train, test = stratified_split(labels, test_fraction=0.2, seed=1)
    again = stratified_split(labels, test_fraction=0.2, seed=1)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(80))
    assert sum(labels[i] == "x" for i in test) == 10 and sum(labels[i] == "y" for i in test) == 6


def test_speaker_folds_never_share_a_speaker(tmp_path) -> None:
    from trainer.corpora import Clip

    clips = [Clip(tmp_path / f"{i}.wav", "happy", f"r:{i % 12:02d}", "r") for i in range(48)]
    clips += [Clip(tmp_path / f"t{i}.wav", "sad", f"t:{'AB'[i % 2]}", "t") for i in range(10)]
    folds = speaker_folds(clips)
    assert len(folds) == 6 + 2
    for fold in folds:
        train_speakers = {clips[i].speaker for i in fold.train}
        test_speakers = {clips[i].speaker for i in fold.test}
        assert train_speakers.isdisjoint(test_speakers) and test_speakers


def test_feature_cache_reuses_and_keys_by_content(tmp_path) -> None:
    from trainer.corpora import Clip

    for i in range(3):
        _write(tmp_path / "audio" / f"{i}.wav", freq=150.0 + 100 * i)
    clips = [Clip(tmp_path / "audio" / f"{i}.wav", "happy", "s", "c") for i in range(3)]
    first, kept = extract_corpus(
        clips, feature_set=MFCC, cache_dir=tmp_path / "cache", progress=False
    )
    cached_files = list((tmp_path / "cache").rglob("*.npy"))
    assert first.shape == (3, 40) and len(kept) == 3 and len(cached_files) == 3
    second, _ = extract_corpus(
        clips, feature_set=MFCC, cache_dir=tmp_path / "cache", progress=False
    )
    np.testing.assert_array_equal(first, second)
    # New content at the same path is a new key, not a stale hit.
    _write(tmp_path / "audio" / "0.wav", freq=900.0)
    third, _ = extract_corpus(clips, feature_set=MFCC, cache_dir=tmp_path / "cache", progress=False)
    assert not np.allclose(third[0], first[0]) and np.array_equal(third[1:], first[1:])


def test_undecodable_clips_are_skipped_not_mislabelled(tmp_path) -> None:
    from trainer.corpora import Clip

    _write(tmp_path / "good.wav")
    (tmp_path / "bad.wav").write_bytes(b"nope")
    clips = [
        Clip(tmp_path / "good.wav", "happy", "s", "c"),
        Clip(tmp_path / "bad.wav", "sad", "s", "c"),
    ]
    matrix, kept = extract_corpus(clips, feature_set=MFCC, progress=False)
    assert matrix.shape == (1, 40) and [c.label for c in kept] == ["happy"]


def test_an_unregistered_variant_is_extracted_by_worker_processes(tmp_path) -> None:
    """Experiments hand the trainer feature set objects the registry does not hold: forked
    workers compute them as the caller would, and the cache keeps them apart from the
    feature set they vary."""
    from trainer.corpora import Clip

    v2 = get_feature_set("speech-stats-v2")
    assert isinstance(v2, SpeechStats)
    variant = SpeechStats(dataclasses.replace(v2.config, name="test-rolloff", rolloff=0.95))
    assert variant.name not in FEATURE_SETS
    clips = []
    for i in range(40):  # more than 32 clips: a process pool extracts them
        _write(tmp_path / "audio" / f"{i}.wav", freq=150.0 + 5 * i)
        clips.append(Clip(tmp_path / "audio" / f"{i}.wav", "happy", f"s{i % 4}", "c"))
    cache = tmp_path / "cache"
    pooled, kept = extract_corpus(
        clips, feature_set=variant, cache_dir=cache, workers=2, progress=False
    )
    assert len(kept) == len(clips)
    expected = [variant.extract(decode_audio(c.path, target_rate=16_000).samples) for c in clips]
    np.testing.assert_array_equal(pooled, np.stack(expected))
    served, _ = extract_corpus(clips, feature_set=v2, cache_dir=cache, workers=1, progress=False)
    assert not np.allclose(served, pooled)
    assert sorted(folder.name.split("-")[0] for folder in cache.iterdir()) == ["speech", "test"]


def test_a_subset_of_the_encoder_parts_keeps_them_in_order() -> None:
    """A configuration naming fewer parts (what the accurate model's ablations train on) gives
    the statistics, then exactly those parts of the full vector, in the full order."""
    served = get_feature_set("speech-stats-v2+ge2e-int8")
    assert isinstance(served, StatsWithEncoder)
    hidden, stats_dim = served.config.encoder.hidden, served.statistics.dim

    def subset(parts: tuple[str, ...]) -> StatsWithEncoder:
        encoder = dataclasses.replace(served.config.encoder, parts=parts)
        return StatsWithEncoder(
            dataclasses.replace(served.config, name="test-subset", encoder=encoder)
        )

    y = tone(freq=200.0, noise=0.01)
    full = served.extract(y)
    mean_std, std_only = subset(("mean", "std")), subset(("std",))
    assert isinstance(mean_std.config, StatsWithEncoderConfig)
    assert mean_std.dim == len(mean_std.names()) == stats_dim + 2 * hidden
    assert std_only.names()[stats_dim] == "encoder_std0"
    np.testing.assert_array_equal(
        mean_std.extract(y), np.delete(full, np.s_[stats_dim : stats_dim + hidden])
    )
    np.testing.assert_array_equal(std_only.extract(y), np.delete(full, np.s_[stats_dim:-hidden]))
    assert std_only.to_dict()["encoder"] == {**served.to_dict()["encoder"], "parts": ["std"]}
