"""The experiment's settings in one frozen dataclass. Defaults reproduce the seed notebook."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

N_TRAIN_MNIST = 60_000
N_TEST_MNIST = 10_000


@dataclass(frozen=True)
class Config:
    # --- labels (core.labels) ---
    target_index: int = 6  # training image the labels are built around (a "1")
    threshold: float = 0.4  # label 1 if cos(x, target) > threshold (or with the inverse image)
    include_inverse: bool = True  # also label 1 if cos(x, 1 - target) > threshold
    # --- model (core.model) ---
    d_hidden: int = 64  # width of the embedding and of the bilinear layer
    # --- training (core.train) ---
    lr: float = 1e-3  # AdamW learning rate (peak of the cosine schedule)
    weight_decay: float = 1.0  # AdamW decoupled weight decay
    epochs: int = 100  # cosine schedule length; one epoch = every full batch once
    batch_size: int = 2048  # last partial batch is dropped, as in the seed
    noise_std: float = 0.1  # std of the Gaussian pixel noise added to every training image
    seed: int = 42  # seeds initialisation, shuffling and noise
    noise_sampler: Literal["fast", "kornia"] = "fast"  # same law, see core.train
    n_train: int | None = None  # use only the first n training images (None = all 60 000)
    n_test: int | None = None  # use only the first n test images (None = all 10 000)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError with a one-line, user-facing message for any setting out of range."""
        if not 0 <= self.target_index < N_TRAIN_MNIST:
            raise ValueError(f"target index must be between 0 and {N_TRAIN_MNIST - 1}, got {self.target_index}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if not 1 <= self.d_hidden <= 1024:
            raise ValueError(f"d_hidden must be between 1 and 1024, got {self.d_hidden}")
        if not (0.0 < self.lr <= 1e9):  # huge values are allowed on purpose: they show divergence
            raise ValueError(f"learning rate must be positive and at most 1e9, got {self.lr}")
        if not 0.0 <= self.weight_decay <= 100.0:
            raise ValueError(f"weight decay must be in [0, 100], got {self.weight_decay}")
        if not 1 <= self.epochs <= 1000:
            raise ValueError(f"epochs must be between 1 and 1000, got {self.epochs}")
        if not 1 <= self.batch_size <= N_TRAIN_MNIST:
            raise ValueError(f"batch size must be between 1 and {N_TRAIN_MNIST}, got {self.batch_size}")
        if not 0.0 <= self.noise_std <= 10.0:
            raise ValueError(f"noise std must be in [0, 10], got {self.noise_std}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be between 0 and 2**32 - 1, got {self.seed}")
        if self.noise_sampler not in ("fast", "kornia"):
            raise ValueError(f"noise sampler must be 'fast' or 'kornia', got {self.noise_sampler!r}")
        if self.n_train is not None and not 1 <= self.n_train <= N_TRAIN_MNIST:
            raise ValueError(f"n_train must be between 1 and {N_TRAIN_MNIST}, got {self.n_train}")
        if self.n_test is not None and not 1 <= self.n_test <= N_TEST_MNIST:
            raise ValueError(f"n_test must be between 1 and {N_TEST_MNIST}, got {self.n_test}")
        n_train = self.n_train or N_TRAIN_MNIST
        if self.batch_size > n_train:
            raise ValueError(
                f"batch size {self.batch_size} is larger than the {n_train} training images: no full batch to train on"
            )

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Build from a dict (e.g. a checkpoint's metadata); unknown keys raise ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**values)
