"""Named training recipes: a feature set plus a training configuration.

``paper`` reproduces the student paper; ``speech-stats`` is the best recipe found by
``bench/accuracy.py`` (see docs/accuracy.md) and the default of ``ser-train``.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    name: str
    feature_set: str
    config: TrainConfig
    description: str


RECIPES = {
    "paper": Recipe(
        "paper",
        "mfcc40-mean",
        TrainConfig(architecture="paper-mlp"),
        "40 MFCC means, MLP 100-200-100, dropout 0.5, Adam, 100 epochs, batch 32",
    ),
    "speech-stats": Recipe(
        "speech-stats",
        "speech-stats-v1",
        TrainConfig(
            architecture="mlp",
            hidden=(256, 128),
            dropout=0.3,
            class_weights=True,
            epochs=60,
            augmentations=("speed0.9", "speed1.1", "white@10", "babble@10"),
        ),
        "speech-stats-v1 (114 spectral, prosodic and voice-quality statistics over speech "
        "frames), MLP 256-128, dropout 0.3, class weights, speed/white-noise/babble "
        "augmentation, speaker-disjoint early stopping, temperature scaling",
    ),
    "speech-stats-noaug": Recipe(
        "speech-stats-noaug",
        "speech-stats-v1",
        TrainConfig(
            architecture="mlp", hidden=(256, 128), dropout=0.3, class_weights=True, epochs=60
        ),
        "as speech-stats, without augmentation",
    ),
}
DEFAULT_RECIPE = "speech-stats"
