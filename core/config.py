"""The experiment's settings in one frozen dataclass. Defaults reproduce the seed notebook.

Every field carries its help text (`field(metadata={"help": ...})`): the CLI builds its flags from
`dataclasses.fields(Config)` (core.reproduce), so a new setting needs no second definition.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from core.text import literal

N_TRAIN_MNIST = 60_000
N_TEST_MNIST = 10_000
MAX_D_HIDDEN = 1024  # widest model the app offers: its (1025, 1025) eigendecomposition takes ~1 s


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class Config:
    # --- labels (core.labels) ---
    target_index: int = field(default=6, metadata=_help("training image the labels are built around (#6 is a 1)"))
    threshold: float = field(
        default=0.4, metadata=_help("label 1 if cos(x, target) > threshold (or with the inverse image)")
    )
    include_inverse: bool = field(default=True, metadata=_help("also label 1 if cos(x, 1 - target) > threshold"))
    # --- model (core.model) ---
    d_hidden: int = field(default=64, metadata=_help("width of the embedding and of the bilinear layer"))
    # --- training (core.train) ---
    lr: float = field(default=1e-3, metadata=_help("AdamW learning rate (peak of the cosine schedule)"))
    weight_decay: float = field(default=1.0, metadata=_help("AdamW decoupled weight decay"))
    epochs: int = field(default=100, metadata=_help("cosine schedule length; one epoch = every full batch once"))
    batch_size: int = field(default=2048, metadata=_help("images per step; the last partial batch is dropped"))
    noise_std: float = field(default=0.1, metadata=_help("std of the Gaussian pixel noise on every training image"))
    seed: int = field(default=42, metadata=_help("seeds initialisation, shuffling and noise"))
    noise_sampler: Literal["fast", "kornia"] = field(
        default="fast", metadata=_help("how the noise is drawn (same law, see core.train)")
    )
    n_train: int | None = field(default=None, metadata=_help("use only the first N training images (default: all)"))
    n_test: int | None = field(default=None, metadata=_help("use only the first N test images (default: all)"))

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError with a one-line, user-facing message for any setting out of range."""
        for f in dataclasses.fields(self):  # types first: a checkpoint's JSON may say 6.5 or "0.4"
            _check_type(f.name, getattr(self, f.name), f.type)
        if not 0 <= self.target_index < N_TRAIN_MNIST:
            raise ValueError(f"target index must be between 0 and {N_TRAIN_MNIST - 1}, got {self.target_index}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if not 1 <= self.d_hidden <= MAX_D_HIDDEN:
            raise ValueError(f"d_hidden must be between 1 and {MAX_D_HIDDEN}, got {self.d_hidden}")
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
            raise ValueError(f"noise sampler must be 'fast' or 'kornia', got {literal(self.noise_sampler)}")
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
        """Build from a dict (e.g. a checkpoint's metadata); unknown keys or wrong types raise ValueError."""
        if not isinstance(values, dict):
            raise ValueError(f"a config must be a JSON object, got {type(values).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**values)


def _check_type(name: str, value: Any, annotation: str) -> None:
    """The field's declared type, strictly: no bool for an int, no 6.5 for an int, only finite floats.

    (An int is accepted for a float field: JSON writes 1.0 as 1 in some encoders.)
    """
    optional = annotation.endswith("| None")
    if value is None:
        if optional:
            return
        raise ValueError(f"{name} must not be empty")
    base = annotation.removesuffix("| None").strip()
    if base == "bool":
        ok = isinstance(value, bool)
    elif base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN
        ok = ok and abs(value) != float("inf")
    else:  # Literal[...] of strings
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"{name} must be {_TYPE_WORDS.get(base, 'text')}, got {literal(value)}")


_TYPE_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a finite number"}

# Named presets, as overrides of the defaults: the app's buttons and the CLI's --preset share them.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},  # the seed notebook: full MNIST, 100 epochs, batch 2048, lr 1e-3, weight decay 1
    "quick": {"epochs": 8, "weight_decay": 3.3, "lr": 4e-3, "batch_size": 1024},  # docs/quick_preset.md
}
# What a preset reached when it was measured (docs/quick_preset.md, bench/quick_preset_sweep.py): the
# Train page's button quotes it, so the sentence and the measurement have one home.
PRESET_RESULTS: dict[str, str] = {
    "quick": "Measured over seeds 0–4 on an idle 2-core AMD EPYC: validation accuracy 95.0–95.3 %, True − False top "
    "eigenvector |cos| with the target 0.84–0.88 (median 0.86); training took 3.9–4.5 s on two threads, 4.8–5.8 s "
    "on one, and 4.2–5.7 s in the app, which gives a training alone on idle cores both of them"
}


def preset(name: str, **changes: Any) -> Config:
    """The Config of a named preset (see PRESETS), with any further changes."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return Config(**{**PRESETS[name], **changes})
