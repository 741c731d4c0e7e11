"""This tree's features against another commit's, on real speech: how far a faster
implementation moves the values, and whether the bundled model's answers change.

    .venv/bin/python -m experiments.feature_parity BASE_COMMIT [--feature-set NAME]
        [--every 20] [--data-root ../shared/data]

Takes every N-th TESS and RAVDESS clip, clean and with three of the training augmentations
(white noise at 5 dB, babble at 10 dB, speed 0.8), computes the feature set with the base
commit's ``service.features`` (a temporary ``git worktree``, in a subprocess, so either layout
of the package works) and with this tree's, and prints, per feature, the largest absolute
difference divided by that feature's spread (standard deviation over the clips), and how many
clips the bundled model labels differently. A speed change that claims to keep the features
must show differences at float32 round-off (about 1e-6 of the spread) and no label change.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from service.features import get_feature_set
from service.model import load_model
from service.settings import BUNDLED_MODEL
from trainer.corpora import default_data_root, read_ravdess, read_tess
from trainer.extract import augmented_samples

ROOT = Path(__file__).resolve().parent.parent
AUGMENTATIONS = (None, "white@5", "babble@10", "speed0.8")

#: Run in the base commit's tree: its feature set over the saved clips, saved beside them.
_BASE_EXTRACT = """
import sys
import numpy as np
from service.features import get_feature_set
clips = np.load(sys.argv[1])
fs = get_feature_set(sys.argv[2])
np.save(sys.argv[3], np.stack([fs.extract(clips[key]) for key in sorted(clips, key=int)]))
"""


def base_features(commit: str, name: str, samples: list[np.ndarray]) -> np.ndarray:
    """Feature set ``name`` as the tree at ``commit`` computes it, one row per clip."""
    with tempfile.TemporaryDirectory() as tmp:
        tree, clips, out = Path(tmp) / "base", Path(tmp) / "clips.npz", Path(tmp) / "base.npy"
        np.savez(clips, **{str(i): y for i, y in enumerate(samples)})
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), commit],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            # cwd first on sys.path: the base tree's packages, not this checkout's install.
            subprocess.run(
                [sys.executable, "-c", _BASE_EXTRACT, str(clips), name, str(out)],
                cwd=tree,
                check=True,
            )
            return np.load(out)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.feature_parity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("base", help="the commit to compare against")
    parser.add_argument("--feature-set", default=None, help="default: the bundled model's")
    parser.add_argument("--every", type=int, default=20, help="take every N-th clip")
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    args = parser.parse_args()

    model = load_model(BUNDLED_MODEL)
    name = args.feature_set or model.feature_set.name
    ours = get_feature_set(name)
    clips = (
        read_tess(args.data_root / "tess")[:: args.every]
        + read_ravdess(args.data_root / "ravdess")[:: max(1, args.every // 2)]
    )
    babble = tuple(str(c.path) for c in clips[:: max(1, len(clips) // 8)])
    samples = [
        augmented_samples(
            clip.path,
            sample_rate=ours.sample_rate,
            augmentation=augmentation,
            babble_sources=babble,
        )
        for clip in clips
        for augmentation in AUGMENTATIONS
    ]
    new = np.stack([ours.extract(y) for y in samples])
    base = base_features(args.base, name, samples)
    spread = base.std(axis=0)
    relative = np.abs(new - base).max(axis=0) / np.where(spread > 0, spread, 1.0)
    names = ours.names() if hasattr(ours, "names") else [f"f{i}" for i in range(new.shape[1])]
    print(f"{name}: {len(new)} clips ({len(clips)} files x {len(AUGMENTATIONS)} conditions)")
    print(f"identical bit for bit: {int((new == base).all(axis=1).sum())} of {len(new)} clips")
    print(f"largest |difference| / spread: {relative.max():.2e} ({names[int(relative.argmax())]})")
    for i in np.argsort(relative)[::-1][:5]:
        print(f"  {names[i]:>18}: {relative[i]:.2e}")
    if model.feature_set.name == name:
        probs_new, probs_base = model.predict_proba(new), model.predict_proba(base)
        changed = int((probs_new.argmax(axis=1) != probs_base.argmax(axis=1)).sum())
        prob_diff = np.abs(probs_new - probs_base).max()
        print(
            f"bundled model: {changed} of {len(new)} labels "
            f"differ; largest probability difference {prob_diff:.2e}"
        )


if __name__ == "__main__":
    main()
