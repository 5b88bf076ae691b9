"""Model identity: a model's id and the record of a trained model (no torch work, no UI).

A model trained from a Config is deterministic, so its id is a short hash of the Config (`config_id`):
the same settings give the same id on every server. A stopped run or an uploaded file is not determined
by its Config, so its id hashes its content (`content_id`) and carries a prefix that keeps it apart from
the canonical ids. Links (core.urlstate), the model store (core.store) and the server's registry
(server.registry) all name models by these ids.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from core.config import Config

if TYPE_CHECKING:  # annotations only: links parse ids before torch loads
    from core.model import BilinearMLP
    from core.snapshot import Snapshot
    from core.train import EpochMetrics

ID_HEX = 12  # hex digits of a model id: 48 bits, no collision in any classroom
MODEL_ID = re.compile(rf"^(?:[pu]-)?[0-9a-f]{{{ID_HEX}}}$")  # canonical, p- (partial run), u- (upload)
PREFIXES = {"stopped": "p-", "uploaded": "u-"}


def short_hash(*parts: bytes) -> str:
    """The first ID_HEX hex digits of SHA-256 over the parts (each length-prefixed)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()[:ID_HEX]


def config_id(config: Config) -> str:
    """Id of the model a Config trains to (deterministic per Config): a hash of its fields (-0.0 as 0.0: equal
    Configs, as Python compares them, have one id)."""
    fields = {k: v + 0.0 if isinstance(v, float) else v for k, v in config.to_dict().items()}
    return short_hash(json.dumps(fields, sort_keys=True).encode())


def content_id(origin: str, *parts: bytes) -> str:
    """Id of a model known only by its content (a stopped run, an upload): prefix + hash."""
    if origin not in PREFIXES:
        raise ValueError(f"content ids are for {sorted(PREFIXES)}, not {origin!r}")
    return PREFIXES[origin] + short_hash(*parts)


Origin = Literal["pretrained", "grid", "trained", "stopped", "uploaded"]


def compute_model_id(model: BilinearMLP, config: Config, history: tuple[EpochMetrics, ...], origin: str) -> str:
    """The model's id: its Config's hash, or for a stopped run / an upload a hash of its content."""
    if origin not in PREFIXES:
        return config_id(config)
    parts = [repr(config.to_dict()).encode(), repr([m.to_dict() for m in history]).encode()]
    for name, tensor in sorted(model.state_dict().items()):
        parts += [name.encode(), tensor.detach().cpu().contiguous().numpy().tobytes()]
    return content_id(origin, *parts)


@dataclass(frozen=True)
class TrainedModel:
    """A model with the config and per-epoch history it was trained with, and its id."""

    model: BilinearMLP
    config: Config
    history: tuple[EpochMetrics, ...]
    origin: Origin
    model_id: str = ""  # filled in from the content: see compute_model_id
    # the session token of the student who trained it ("" when unknown: shipped, uploaded, or read back
    # from the store after a restart); never shown, only hashed into a nickname (core.board.nickname)
    trained_by: str = field(default="", compare=False, repr=False)
    # the verdict's top eigenvector and spectrum as it trained (core.snapshot), oldest first; () when not
    # recorded (the shipped checkpoints, files saved before snapshots existed). Not part of the id.
    snapshots: tuple[Snapshot, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        self.model.eval().requires_grad_(False)  # from here on the model is only read, maybe by many sessions
        if not self.model_id:
            object.__setattr__(self, "model_id", compute_model_id(self.model, self.config, self.history, self.origin))

    @property
    def epochs_done(self) -> int:
        return self.history[-1].epoch if self.history else self.config.epochs

    @property
    def n_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())
