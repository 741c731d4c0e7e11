"""This tree's features against another commit's, on real speech: how far a faster
implementation moves the values, and whether the bundled model's answers change.

    .venv/bin/python bench/feature_parity.py BASE_COMMIT [--feature-set NAME] [--every 20]
        [--data-root ../shared/data]

Takes every N-th TESS and RAVDESS clip, clean and with three of the training augmentations
(white noise at 5 dB, babble at 10 dB, speed 0.8), computes the feature set with the base
commit's ``service/features.py`` and with this tree's, and prints, per feature, the largest
absolute difference divided by that feature's spread (standard deviation over the clips), and
how many clips the bundled model labels differently. A speed change that claims to keep the
features must show differences at float32 round-off (about 1e-6 of the spread) and no label
change.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.features import FEATURE_SETS  # noqa: E402
from service.model import load_model  # noqa: E402
from service.settings import BUNDLED_MODEL  # noqa: E402
from trainer.corpora import default_data_root, read_ravdess, read_tess  # noqa: E402
from trainer.extract import augmented_samples  # noqa: E402

AUGMENTATIONS = (None, "white@5", "babble@10", "speed0.8")


def base_feature_sets(commit: str) -> dict:
    """The registry of ``service/features.py`` as it is at ``commit``."""
    source = subprocess.run(
        ["git", "show", f"{commit}:service/features.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features_base.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("features_base", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        # dataclasses look their module up in sys.modules while the class is made.
        sys.modules["features_base"] = module
        spec.loader.exec_module(module)
    return module.FEATURE_SETS


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("base", help="the commit to compare against")
    parser.add_argument("--feature-set", default=None, help="default: the bundled model's")
    parser.add_argument("--every", type=int, default=20, help="take every N-th clip")
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    args = parser.parse_args()

    model = load_model(BUNDLED_MODEL)
    name = args.feature_set or model.feature_set.name
    ours, theirs = FEATURE_SETS[name], base_feature_sets(args.base)[name]
    clips = (
        read_tess(args.data_root / "tess")[:: args.every]
        + read_ravdess(args.data_root / "ravdess")[:: max(1, args.every // 2)]
    )
    babble = tuple(str(c.path) for c in clips[:: max(1, len(clips) // 8)])
    new_rows, base_rows = [], []
    for clip in clips:
        for augmentation in AUGMENTATIONS:
            y = augmented_samples(
                clip.path,
                sample_rate=ours.sample_rate,
                augmentation=augmentation,
                babble_sources=babble,
            )
            new_rows.append(ours.extract(y))
            base_rows.append(theirs.extract(y))
    new, base = np.array(new_rows), np.array(base_rows)
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
