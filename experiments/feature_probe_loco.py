"""Which features to serve: a linear probe of the candidate feature sets across corpora.

Candidates: ``speech-stats-v2``, Whisper tiny.en's encoder part alone (layers 2-3 mean and
spread), Resemblyzer's GE2E part alone, and the statistics followed by either or both (the
registered ``speech-stats-v2+whisper-l23-int8`` and ``speech-stats-v2+ge2e-int8``, and
``speech-stats-v2+whisper-l23+ge2e-int8``, built as an object). Each part is extracted once
over the five corpora (``trainer.extract``, cached by configuration) and the sets are their
columns side by side, in the combined sets' order (checked against them on a few clips).

Protocols, each with a standardised ``LogisticRegression`` (class weights balanced, C fixed
beforehand, lbfgs):

- leave one corpus out: train on four corpora (calm as neutral), test on the fifth, UA over
  the held-out corpus's own labels with the argmax restricted to them;
- RAVDESS actor-independent, its 8 classes (calm its own): 6 folds of 4 actors (actors
  4k+1..4k+4, two women and two men), training on the other 20 actors and the four other
  corpora; argmax over RAVDESS's 8 labels; UA per fold, averaged.

lbfgs is deterministic, so the seed moves nothing here; it is run for each seed anyway and
the run says whether the results differ.

    taskset -c 1 .venv/bin/python -m experiments.feature_probe_loco [--seeds 42 43] [--c 0.1]

Writes /tmp/feature_probe_loco.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.features import (
    FEATURE_SETS,
    StatsWithEncoder,
    StatsWithEncodersConfig,
    VoiceEncoder,
    VoiceEncoderConfig,
    WhisperEncoder,
    WhisperEncoderConfig,
    get_feature_set,
)
from trainer.corpora import CORPORA, Clip, default_data_root, load_corpora
from trainer.evaluate import classification_metrics
from trainer.extract import default_cache_dir, extract_corpus

log = logging.getLogger("experiments.feature_probe_loco")

#: Candidate sets: the parts they are made of, in column order.
CANDIDATES = {
    "speech-stats-v2": ("stats",),
    "whisper-l23 alone": ("whisper",),
    "ge2e alone": ("ge2e",),
    "speech-stats-v2+whisper-l23-int8": ("stats", "whisper"),
    "speech-stats-v2+ge2e-int8": ("stats", "ge2e"),
    "speech-stats-v2+whisper-l23+ge2e-int8": ("stats", "whisper", "ge2e"),
}


class EncoderPart:
    """One pretrained encoder's pooled outputs alone, as a feature set object for
    ``extract_corpus`` (an experiment's variant: registered nowhere)."""

    def __init__(self, name: str, encoder: VoiceEncoder | WhisperEncoder) -> None:
        self.name = name
        self.encoder = encoder
        self.sample_rate = encoder.config.spectral.sample_rate

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def prepare(self) -> None:
        self.encoder.session()

    def extract(self, samples: np.ndarray) -> np.ndarray:
        return self.encoder.extract(samples)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "encoder-part", "name": self.name, "encoder": self.encoder.config.to_dict()}


def part_sets() -> dict[str, Any]:
    return {
        "stats": get_feature_set("speech-stats-v2"),
        "whisper": EncoderPart("whisper-l23-int8", WhisperEncoder(WhisperEncoderConfig())),
        "ge2e": EncoderPart("ge2e-int8", VoiceEncoder(VoiceEncoderConfig())),
    }


def extract_parts(clips: Sequence[Clip], workers: int) -> dict[str, dict[str, np.ndarray]]:
    """Per part, path -> feature vector, for the clips that decode."""
    out = {}
    for part, fs in part_sets().items():
        start = time.process_time()
        matrix, kept = extract_corpus(
            clips, feature_set=fs, cache_dir=default_cache_dir(), workers=workers
        )
        log.info("%s: %s in %.0f s CPU", part, matrix.shape, time.process_time() - start)
        out[part] = {str(clip.path): row for clip, row in zip(kept, matrix, strict=True)}
    return out


def combined_sets() -> dict[str, Any]:
    """The candidates of more than one part as the service would run them: registered, or
    (statistics + Whisper + GE2E, which no served model names) built as an object."""
    sets = {name: FEATURE_SETS[name] for name in CANDIDATES if name in FEATURE_SETS}
    sets["speech-stats-v2+whisper-l23+ge2e-int8"] = StatsWithEncoder(
        StatsWithEncodersConfig(
            name="speech-stats-v2+whisper-l23+ge2e-int8",
            version=1,
            statistics=FEATURE_SETS["speech-stats-v2"].config,
            encoders=(WhisperEncoderConfig(), VoiceEncoderConfig()),
        )
    )
    return sets


def check_against_served(clips: Sequence[Clip], parts: dict[str, dict[str, np.ndarray]]) -> None:
    """The columns side by side are the combined sets' vectors (a few clips)."""
    from trainer.extract import features_for_file  # noqa: PLC0415

    for name, fs in combined_sets().items():
        members = CANDIDATES[name]
        for clip in clips[:: max(1, len(clips) // 3)][:3]:
            served = features_for_file(clip.path, fs)
            ours = np.concatenate([parts[m][str(clip.path)] for m in members])
            np.testing.assert_allclose(ours, served, rtol=0, atol=1e-6, err_msg=name)


def fit_scores(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, *, c: float, seed: int
) -> np.ndarray:
    """Class probabilities ``(len(test), n_labels)`` of a standardised logistic regression
    fitted on ``train``; a label without training clips gets 0."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    scaler = StandardScaler().fit(x[train])
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
    model.fit(scaler.transform(x[train]), y[train])
    scores = np.zeros((len(test), int(y.max()) + 1))
    scores[:, model.classes_] = model.predict_proba(scaler.transform(x[test]))
    return scores


def restricted_ua(
    scores: np.ndarray, y: np.ndarray, labels: Sequence[str], own: Sequence[str]
) -> float:
    """UA over ``own`` labels, the argmax taken among them only."""
    columns = [labels.index(label) for label in own]
    predicted = [own[i] for i in np.argmax(scores[:, columns], axis=1)]
    truth = [labels[k] for k in y]
    return classification_metrics(truth, predicted, own)["unweighted_accuracy"]


def matrix(
    clips: Sequence[Clip], parts: dict[str, dict[str, np.ndarray]], members: tuple[str, ...]
) -> np.ndarray:
    return np.stack([np.concatenate([parts[m][str(c.path)] for m in members]) for c in clips])


def loco(x: np.ndarray, clips: Sequence[Clip], *, c: float, seed: int) -> dict[str, float]:
    labels = sorted({clip.label for clip in clips})
    y = np.array([labels.index(clip.label) for clip in clips])
    corpora = np.array([clip.corpus for clip in clips])
    out = {}
    for corpus in sorted(set(corpora)):
        train, test = np.flatnonzero(corpora != corpus), np.flatnonzero(corpora == corpus)
        scores = fit_scores(x, y, train, test, c=c, seed=seed)
        own = sorted({labels[k] for k in y[test]})
        out[corpus] = restricted_ua(scores, y[test], labels, own)
    return out


def ravdess8(x: np.ndarray, clips: Sequence[Clip], *, c: float, seed: int) -> list[float]:
    labels = sorted({clip.label for clip in clips})
    y = np.array([labels.index(clip.label) for clip in clips])
    actor = np.array(
        [int(cl.speaker.split(":")[1]) if cl.corpus == "ravdess" else 0 for cl in clips]
    )
    own = sorted({clip.label for clip in clips if clip.corpus == "ravdess"})
    assert len(own) == 8, own
    folds = []
    for k in range(6):
        test = np.flatnonzero((actor > 0) & ((actor - 1) // 4 == k))
        train = np.setdiff1d(np.arange(len(clips)), test)
        scores = fit_scores(x, y, train, test, c=c, seed=seed)
        folds.append(restricted_ua(scores, y[test], labels, own))
    return folds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    parser.add_argument(
        "--c",
        type=float,
        default=0.1,
        help="inverse regularisation, fixed before the run (default 0.1: the Whisper study's "
        "RAVDESS probe found it as good as or better than C=1 for every stage)",
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/feature_probe_loco.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    clips7 = load_corpora(CORPORA, data_root=args.data_root)
    clips8 = load_corpora(CORPORA, data_root=args.data_root, calm_as="calm")
    every = {str(clip.path): clip for clip in [*clips7, *clips8]}  # calm differs: same files
    parts = extract_parts([every[path] for path in sorted(every)], args.workers)
    check_against_served(clips7, parts)
    decoded = set(parts["stats"]) & set(parts["whisper"]) & set(parts["ge2e"])
    clips7 = [c for c in clips7 if str(c.path) in decoded]
    clips8 = [c for c in clips8 if str(c.path) in decoded]
    results: dict[str, Any] = {
        "command": "python -m experiments.feature_probe_loco " + " ".join(argv or []),
        "c": args.c,
        "clips": {"loco": len(clips7), "ravdess8": len(clips8)},
        "sets": {},
    }
    for name, members in CANDIDATES.items():
        x7, x8 = matrix(clips7, parts, members), matrix(clips8, parts, members)
        entry: dict[str, Any] = {"parts": list(members), "dim": int(x7.shape[1]), "seeds": {}}
        for seed in args.seeds:
            start = time.process_time()
            per_corpus = loco(x7, clips7, c=args.c, seed=seed)
            folds = ravdess8(x8, clips8, c=args.c, seed=seed)
            entry["seeds"][str(seed)] = {
                "loco": per_corpus,
                "loco_mean": float(np.mean(list(per_corpus.values()))),
                "ravdess8_folds": folds,
                "ravdess8": float(np.mean(folds)),
            }
            log.info("%s seed %d: %.0f s CPU", name, seed, time.process_time() - start)
        results["sets"][name] = entry
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    sets = results["sets"]
    first = next(iter(sets.values()))
    seeds = list(first["seeds"])
    corpora = list(first["seeds"][seeds[0]]["loco"])
    header = ["features (dims)", *corpora, "LOCO mean", "RAVDESS 8-class"]
    print("| " + " | ".join(header) + " |")  # noqa: T201
    print("|" + "---|" * len(header))  # noqa: T201
    for name, entry in sets.items():
        run = entry["seeds"][seeds[0]]
        cells = [f"{100 * run['loco'][k]:.1f}" for k in corpora]
        cells += [f"{100 * run['loco_mean']:.1f}", f"{100 * run['ravdess8']:.1f}"]
        print(f"| {name} ({entry['dim']}) | " + " | ".join(cells) + " |")  # noqa: T201
    for seed in seeds[1:]:
        diff = max(
            abs(entry["seeds"][seed][key] - entry["seeds"][seeds[0]][key])
            for entry in sets.values()
            for key in ("loco_mean", "ravdess8")
        )
        print(f"seed {seed} vs {seeds[0]}: largest difference {100 * diff:.2f} points")  # noqa: T201


if __name__ == "__main__":
    main()
