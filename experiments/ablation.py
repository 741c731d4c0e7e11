"""Ablation: recipe variants on the protocols that decide between them, fast enough to iterate.

    .venv/bin/python -m experiments.ablation [VARIANT ...] [--data-root ../shared/data]
        [--seed N] [--protocols {ravdess,cross-speaker,cross-corpus} ...]

RAVDESS actor-independent, 8 classes (6 folds of 4 held-out actors), the same folds with white
and babble noise at 10 dB SNR mixed into the test audio, TESS cross-speaker (both directions)
and cross-corpus (TESS -> RAVDESS and back on the seven shared labels, as ``bench.accuracy``'s
protocol 4: the closest proxy here for corpora never seen), or the ``--protocols`` given;
seed 42 unless ``--seed``. Prints one line of UA per variant and appends it to
``docs/ablation.jsonl``. The full benchmark is ``python -m bench.accuracy``.

Every variant is a :class:`trainer.recipes.Recipe` built here from the product's ``default``
recipe (``dataclasses.replace`` on its training configuration or on its feature set's);
nothing is registered with the product. Variants whose ingredients left the product
(``speech-stats-v1``, the float speaker encoder, version-3 statistics, statistics without the
noise-floor gate) are gone; their rows stay in ``docs/ablation.jsonl`` and the journal
(``docs/experiments.md``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.accuracy_report import DOCS
from bench.scoring import Features, babble_talkers, pooled, ravdess_folds, score, train_predict
from service.features import SpeechStats
from trainer.config import TrainConfig
from trainer.corpora import default_data_root, read_ravdess, read_tess
from trainer.extract import default_cache_dir
from trainer.recipes import DEFAULT, Recipe

#: The default recipe's features, which the feature variants below change.
V2 = DEFAULT.feature_set
assert isinstance(V2, SpeechStats)

FIXED_SNR = ("speed0.9", "speed1.1", "white@10", "babble@10")
#: The default recipe's copies before the two voice-changing ones joined it.
RANDOM_SNR = DEFAULT.config.augmentations[:8]


def _variant(
    name: str, augmentations: tuple[str, ...], *, batch_size: int = 32, ensemble: int = 1
) -> Recipe:
    """The default's features with an earlier default's training (MLP 256-128, 60 epochs)."""
    config = TrainConfig(
        architecture="mlp",
        hidden=(256, 128),
        dropout=0.3,
        class_weights=True,
        epochs=60,
        batch_size=batch_size,
        ensemble=ensemble,
        augmentations=augmentations,
    )
    return Recipe(name, V2, config, name)


def _features(name: str, **changes: Any) -> SpeechStats:
    """``speech-stats-v2`` with its configuration changed, under its own name."""
    return SpeechStats(replace(V2.config, name=name, **changes))


class _WithoutColumns(SpeechStats):
    """``speech-stats-v2`` with the named statistics left out: does a group of statistics
    carry the corpus (recording, speakers) rather than the emotion?"""

    def __init__(self, name: str, dropped: Sequence[str]) -> None:
        super().__init__(replace(V2.config, name=name))
        full = super().names()
        unknown = set(dropped) - set(full)
        if unknown:  # a misspelt name would silently drop nothing
            raise ValueError(f"not statistics of speech-stats-v2: {sorted(unknown)}")
        self._dropped = tuple(dropped)
        self._keep = np.array([n not in self._dropped for n in full])

    def names(self) -> list[str]:
        return [n for n, keep in zip(super().names(), self._keep, strict=True) if keep]

    def extract(self, samples: np.ndarray) -> np.ndarray:
        return super().extract(samples)[self._keep]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "dropped": list(self._dropped)}


def _default_features(name: str, feature_set: SpeechStats) -> Recipe:
    """The default recipe's training on other features."""
    return Recipe(name, feature_set, DEFAULT.config, name)


def _default_training(name: str, **changes: Any) -> Recipe:
    """The default recipe with its training configuration changed."""
    return Recipe(name, V2, replace(DEFAULT.config, **changes), name)


def _default_plus(name: str, *augmentations: str) -> Recipe:
    """The default recipe with more augmented copies of every training clip."""
    return _default_training(name, augmentations=(*DEFAULT.config.augmentations, *augmentations))


#: Changes to the statistics, with the default's training: which of v2's choices matter, and
#: cheaper front ends for speed. Results and reading: docs/experiments.md.
_FEATURE_ABLATIONS: dict[str, dict[str, Any]] = {
    "v2-pitch-16k-10ms": {"pitch_rate": 16000, "pitch_hop": 160},
    "v2-hop-20ms": {"spectral": replace(V2.config.spectral, hop_length=320), "pitch_hop": 320},
    "v2-hop-20ms-pitch-40ms": {
        "spectral": replace(V2.config.spectral, hop_length=320),
        "pitch_hop": 640,
    },
    # A shallower loudest-frame test, so that clean clips with a floor (TESS: median 34 dB
    # below the loudest frame) and without one (RAVDESS: 70 dB) pool the same range of frames.
    "v2-silence-30db": {"silence_db": 30.0},
    "v2-silence-25db": {"silence_db": 25.0},
    "v2-silence-35db": {"silence_db": 35.0},
}

VARIANTS: dict[str, Recipe] = {
    # The previous default: the statistics with 8 augmented copies, no voice-changing ones.
    "speech-stats-v2": replace(
        DEFAULT,
        name="speech-stats-v2",
        config=replace(DEFAULT.config, augmentations=RANDOM_SNR),
        description="the default recipe without its two voice-changing copies (8 copies)",
    ),
    "v2-fixed-snr": _variant("v2-fixed-snr", FIXED_SNR),
    "v2-random-snr-b128": _variant("v2-random-snr-b128", RANDOM_SNR, batch_size=128),
    "v2-random-snr-b128-ensemble3": _variant(
        "v2-random-snr-b128-ensemble3", RANDOM_SNR, batch_size=128, ensemble=3
    ),
    # Two more voice-changing copies (speeds outside 0.9-1.1): kept, the default recipe.
    "v2-more-voices": replace(DEFAULT, name="v2-more-voices"),
    **{
        name: _default_features(name, _features(name, **changes))
        for name, changes in _FEATURE_ABLATIONS.items()
    },
    # The default plus two copies at speeds further out (0.7-0.8, 1.25-1.4: pitch and
    # formants up to half an octave down, a third up): the speed copies were what helped the
    # unseen TESS speaker, does the trend go on?
    "v2-voices-wider": _default_plus("v2-voices-wider", "speed0.7:0.8", "speed1.25:1.4"),
    # The default plus two copies through random microphone / channel responses (up to 3-12 dB
    # from flat, one with a voice-changing speed too): the recording's colour, which differs
    # between corpora, stops being a cue, while the MFCC means stay in the features.
    "v2-voices-eq": _default_plus("v2-voices-eq", "eq@3:12", "speed0.8:1.25+eq@3:12"),
    # Noise on the voice-changing copies too: since the two extra speed copies joined the
    # recipe, 3 of its 10 copies carry white noise and 2 babble, and the white-noise cost went
    # from 5.6 to 6.9 points; do noisy other voices buy it back?
    "v2-voices-noisy-voices": _default_plus(
        "v2-voices-noisy-voices", "speed0.8:0.92+white@5:30", "speed1.08:1.25+babble@5:30"
    ),
    # More of the noise levels the target is set at (10 dB), white and babble.
    "v2-voices-mid-snr": _default_plus("v2-voices-mid-snr", "white@5:15", "babble@5:15"),
    # Regularisers aimed at voices and corpora the network has not heard: softened targets,
    # and training on blends of clips.
    "v2-voices-label-smoothing": _default_training(
        "v2-voices-label-smoothing", label_smoothing=0.1
    ),
    "v2-voices-mixup": _default_training("v2-voices-mixup", mixup=0.2),
    # Without the 13 statistics whose value under 10 dB of white noise or babble (the
    # training babble talkers) correlates below 0.4 with their clean value over RAVDESS (no
    # labels used): in noise they tell the noise level, not the emotion.
    "v2-no-noise-fragile": _default_features(
        "v2-no-noise-fragile",
        _WithoutColumns(
            "v2-no-noise-fragile",
            [
                *("mfcc0_std", "bandwidth_mean", "bandwidth_std", "flatness_mean"),
                *("flatness_std", "energy_std", "energy_p10", "energy_peaks_per_s"),
                *("voicing_std", "f0_std", "f0_p10", "f0_range", "f0_slope"),
            ],
        ),
    ),
    # Without the MFCC means (the utterance's average spectral envelope: microphone, room and
    # speaker as much as emotion), as cepstral mean normalisation would remove them.
    "v2-no-mfcc-means": _default_features(
        "v2-no-mfcc-means",
        _WithoutColumns("v2-no-mfcc-means", [f"mfcc{i}_mean" for i in range(V2.config.n_mfcc)]),
    ),
}

#: Protocol groups: RAVDESS folds (clean, white and babble noise), TESS cross-speaker, and
#: cross-corpus (both directions).
PROTOCOLS = ("ravdess", "cross-speaker", "cross-corpus")


def main(
    argv: Sequence[str] | None = None,
    *,
    variants: Mapping[str, Recipe] = VARIANTS,
    prog: str = "python -m experiments.ablation",
) -> None:
    """Score ``variants`` (this module's, or another study's) and log a row for each."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("variants", nargs="*", choices=[[], *variants], default=list(variants))
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--protocols",
        nargs="+",
        choices=PROTOCOLS,
        default=list(PROTOCOLS),
        help="a subset, for a quick screen (cross-corpus alone takes a few minutes)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tess = read_tess(args.data_root / "tess")
    rav8 = read_ravdess(args.data_root / "ravdess", native_labels=True)
    babble_train, babble_test = babble_talkers(tess)  # as bench.accuracy
    common: dict[str, Any] = {
        "cache_dir": default_cache_dir(),
        "workers": args.workers,
        "babble_train": babble_train,
        "babble_test": babble_test,
    }
    rav_feats, tess_feats = Features(rav8, **common), Features(tess, **common)
    rav_labels = sorted({c.label for c in rav8})
    tess_labels = sorted({c.label for c in tess})
    y_rav = np.array([rav_labels.index(c.label) for c in rav8])
    y_tess = np.array([tess_labels.index(c.label) for c in tess])
    speakers = np.array([c.speaker for c in tess])
    # Cross-corpus: the seven shared labels, RAVDESS "calm" left out (as bench.accuracy).
    calm = {c.path for c in rav8 if c.label == "calm"}
    both = tess + [c for c in read_ravdess(args.data_root / "ravdess") if c.path not in calm]
    both_feats, both_labels = Features(both, **common), sorted({c.label for c in both})
    y_both = np.array([both_labels.index(c.label) for c in both])
    is_tess = np.array([c.corpus == "tess" for c in both])
    for name in args.variants:
        variant, started = variants[name], time.time()
        fs = variant.feature_set
        runs: dict[str, list[dict[str, Any]]] = {}
        if "ravdess" in args.protocols:
            runs |= {"rav8": [], "rav8+white@10": [], "rav8+babble@10": []}
        if "cross-speaker" in args.protocols:
            runs["tess-x"] = []
        if "cross-corpus" in args.protocols:
            runs |= {"tess->rav": [], "rav->tess": []}
        for _, train, test in ravdess_folds(rav8) if "ravdess" in args.protocols else []:
            tests = {
                "rav8": rav_feats.get(fs)[test],
                "rav8+white@10": rav_feats.get(fs, "white@10", "test")[test],
                "rav8+babble@10": rav_feats.get(fs, "babble@10", "test")[test],
            }
            out = train_predict(variant, rav_feats, train, tests, rav_labels, y_rav, seed=args.seed)
            for key in tests:
                runs[key].append(score(out[key], y_rav[test], rav_labels))
        speaker_pairs = (("tess:OAF", "tess:YAF"), ("tess:YAF", "tess:OAF"))
        for a, b in speaker_pairs if "cross-speaker" in args.protocols else ():
            train, test = np.flatnonzero(speakers == a), np.flatnonzero(speakers == b)
            x_test = tess_feats.get(fs)[test]
            out = train_predict(
                variant, tess_feats, train, {"t": x_test}, tess_labels, y_tess, seed=args.seed
            )
            runs["tess-x"].append(score(out["t"], y_tess[test], tess_labels))
        directions = (("tess->rav", is_tess), ("rav->tess", ~is_tess))
        for key, source in directions if "cross-corpus" in args.protocols else ():
            train, test = np.flatnonzero(source), np.flatnonzero(~source)
            x_test = both_feats.get(fs)[test]
            out = train_predict(
                variant, both_feats, train, {"t": x_test}, both_labels, y_both, seed=args.seed
            )
            runs[key].append(score(out["t"], y_both[test], both_labels))
        row: dict[str, Any] = {
            k: round(100 * pooled(v)["unweighted_accuracy"], 1) for k, v in runs.items()
        }
        row = {"variant": name, **row, "seed": args.seed, "seconds": round(time.time() - started)}
        print(json.dumps(row), flush=True)
        with (DOCS / "ablation.jsonl").open("a") as out_file:
            out_file.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
