"""Training configuration: everything that determines a trained model, saved next to it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: The groups ``TrainConfig.balance`` can give equal training weight to.
BALANCE_MODES = ("none", "speaker", "corpus")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model. Saved next to it; seed first.

    Frozen: a recipe's configuration is shared by everyone who trains it, so a variant is a
    new object (``dataclasses.replace``), never an edit of the recipe's.
    """

    seed: int = 42
    architecture: str = "paper-mlp"
    hidden: tuple[int, ...] = (100, 200, 100)
    dropout: float = 0.5
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    validation_fraction: float = 0.15
    class_weights: bool = False
    augmentations: tuple[str, ...] = ()
    #: Networks trained from seeds seed, seed+1, ...; the exported graph averages them.
    ensemble: int = 1
    #: With a feature set of statistics then an encoder's outputs: a second network of this
    #: configuration is trained on the statistics alone, and the graph returns the two
    #: networks' calibrated probabilities averaged with this weight on the second (late
    #: fusion); 0 = no second network.
    fuse_statistics: float = 0.0
    #: Target smoothing: each one-hot label keeps 1 - this, the rest spread over all labels.
    label_smoothing: float = 0.0
    #: Mixup: each training batch is blended with a shuffled copy of itself (features,
    #: labels and class weights alike) at a Beta(mixup, mixup) ratio per clip; 0 = off.
    mixup: float = 0.0
    #: Each clip's loss is the cross-entropy over the labels its own corpus has (the
    #: probabilities renormalised over them), so a clip of a corpus without "surprise" is
    #: never pushed away from surprise; the exported graph still outputs every label.
    mask_absent_labels: bool = False
    #: Per-clip sample weights giving each speaker ("speaker") or each corpus ("corpus")
    #: equal total weight in training, times the class weights, renormalised to mean 1.
    balance: str = "none"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"balance must be one of {BALANCE_MODES}, not {self.balance!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        out["augmentations"] = list(self.augmentations)
        return out
