"""Named training recipes: a feature set plus a training configuration.

``paper`` reproduces the student paper; ``speech-stats-v2`` is the best recipe found by
``bench/accuracy.py`` (see docs/accuracy.md) and the default of ``ser-train``;
``speech-stats`` is the previous default, kept to reproduce the models trained with it.
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
    "speech-stats-v2": Recipe(
        "speech-stats-v2",
        "speech-stats-v2",
        TrainConfig(
            architecture="mlp",
            hidden=(256, 128),
            dropout=0.3,
            class_weights=True,
            epochs=60,
            batch_size=128,
            ensemble=3,
            augmentations=(
                "speed0.9",
                "speed1.1",
                "white@0:30",
                "babble@0:30",
                "speed0.9+white@5:30",
                "speed1.1+babble@5:30",
                "reverb0.4+white@10:40",
                "gain@-20:0",
            ),
        ),
        "speech-stats-v2 (118 statistics over speech frames, with a noise-floor gate), "
        "3 averaged MLPs 256-128, dropout 0.3, batch 128, class weights; speed, white noise "
        "and babble at random SNRs, reverberation and gain augmentation (8 copies); "
        "speaker-disjoint early stopping, temperature scaling",
    ),
}
DEFAULT_RECIPE = "speech-stats-v2"
