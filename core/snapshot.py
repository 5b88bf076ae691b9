"""The target appearing in the weights while the model trains: one small record per snapshot of the weights.

The paper's claim (Pearce et al. 2025, §4.3) is about *weights*, and the weights change every step, so the
lab decomposes them while they train: after every epoch (and a few times in the first one, and once before
the first step) the verdict's matrix (core.findings.verdict_view: the True − False matrix in the view the
Eigenvectors page's verdict uses) is decomposed with core.eigen.decompose, and a `Snapshot` keeps

- its top eigenvector's |cos| with the centred target and its eigenvalue λ_0 (core.eigen.top_eigenvector);
- how concentrated the spectrum is: λ_0² / Σλ² (`top_energy_share`) and how many eigenvectors, largest |λ|
  first, carry 90 % of Σλ² (`eigenvectors_for_90pct`): one spike with weight decay, many features without;
- a thumbnail of that eigenvector, signed to match the target and quantised to int8 (784 bytes).

Snapshots travel with the model (core.identity.TrainedModel.snapshots, a checkpoint's "snapshots"
metadata, the CLI JSON), so a replayed run shows how the target appeared. They are cheap: at d_hidden 64 one
costs a few milliseconds against ~0.5 s per epoch, and `Watcher` skips snapshots that would take more than
`budget` of the training time so far (a wide model's eigendecomposition takes up to a second).
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from jaxtyping import Float, UInt8
from torch import Tensor

from core.directions import DIRECTIONS, VIEWS
from core.eigen import decompose, top_eigenvector
from core.findings import verdict_view
from core.model import BilinearMLP
from core.spectrum import eigenvectors_for_90pct, top_energy_share
from core.text import literal

THUMBNAIL_LEVELS = 127  # int8: the thumbnail's largest |pixel| is stored as 127
KEPT_THUMBNAILS = 12  # thumbnails a checkpoint keeps (the first, the last and evenly spaced between)
FIRST_EPOCH_LOOKS = 4  # snapshots in the first epoch: after each quarter (the last one is the epoch's end)
BUDGET = 0.03  # at most this share of the training time so far goes to snapshots (issue 27's goal: 5 %)


def encode_thumbnail(image: Float[Tensor, "28 28"]) -> bytes:
    """An eigenvector image as 784 int8 values, its largest |pixel| at ±127 (its scale is arbitrary anyway)."""
    peak = float(image.abs().max())
    scaled = image.double() / peak * THUMBNAIL_LEVELS if peak > 0 else torch.zeros(28, 28, dtype=torch.float64)
    return scaled.round().to(torch.int8).flatten().numpy().tobytes()


def decode_thumbnail(data: bytes) -> Float[Tensor, "28 28"]:
    """The thumbnail as floats in [-1, 1]."""
    values = torch.frombuffer(bytearray(data), dtype=torch.int8).double()
    return (values / THUMBNAIL_LEVELS).reshape(28, 28)


@dataclass(frozen=True)
class Snapshot:
    """The verdict's matrix of the weights after `step` optimiser steps, decomposed."""

    step: int  # optimiser steps done (0: the initial weights)
    epoch: float  # step / steps per epoch: 0.25 is a quarter into the first epoch, 3.0 the end of the third
    direction: str  # which matrix (core.directions.DIRECTIONS) ...
    view: str  # ... and which view of it (core.directions.VIEWS): core.findings.verdict_view() when taken
    cos: float  # |cos| of its top eigenvector with the centred target
    eigenvalue: float  # λ_0, the largest eigenvalue
    top_share: float  # λ_0² / Σλ²
    for_90pct: int  # eigenvectors (largest |λ| first) that carry 90 % of Σλ²
    thumbnail: bytes | None = None  # the top eigenvector, signed to match the target, as int8 (encode_thumbnail)

    def image(self) -> Float[Tensor, "28 28"] | None:
        return None if self.thumbnail is None else decode_thumbnail(self.thumbnail)

    @property
    def label(self) -> str:
        """'at the start', 'epoch 0.24', 'epoch 3': where in the run it was taken."""
        if self.step == 0:
            return "at the start"
        return f"epoch {self.epoch:g}" if float(self.epoch).is_integer() else f"epoch {self.epoch:.2f}"

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["thumbnail"] = None if self.thumbnail is None else base64.b64encode(self.thumbnail).decode("ascii")
        return values

    @classmethod
    def from_dict(cls, values: Any) -> Snapshot:
        """One snapshot from untrusted JSON (a checkpoint's metadata): exact keys, strict types, numbers in
        their ranges; ValueError with a one-line reason otherwise."""
        names = [f.name for f in fields(cls)]
        if not isinstance(values, dict) or sorted(values) != sorted(names):
            raise ValueError(f"a snapshot must have exactly the keys {names}")

        def number(name: str, low: float, high: float, whole: bool = False) -> float:
            value = values[name]
            ok = isinstance(value, int) if whole else isinstance(value, (int, float))
            if not ok or isinstance(value, bool) or not math.isfinite(value) or not low <= value <= high:
                kind = "a whole number" if whole else "a number"
                raise ValueError(f"snapshot {name} must be {kind} from {low:g} to {high:g}, got {literal(value)}")
            return value

        if values["direction"] not in DIRECTIONS or values["view"] not in VIEWS:
            raise ValueError(f"unknown snapshot matrix {literal(values['direction'])} / {literal(values['view'])}")
        thumbnail = values["thumbnail"]
        if thumbnail is not None:
            try:
                thumbnail = base64.b64decode(thumbnail, validate=True) if isinstance(thumbnail, str) else b""
            except ValueError:
                thumbnail = b""
            if len(thumbnail) != 784:
                raise ValueError("a snapshot's thumbnail must be 784 int8 pixels in base64")
        return cls(
            step=int(number("step", 0, 1e9, whole=True)),
            epoch=float(number("epoch", 0, 1000)),
            direction=values["direction"],
            view=values["view"],
            cos=float(number("cos", 0, 1 + 1e-9)),
            eigenvalue=float(number("eigenvalue", -1e12, 1e12)),
            top_share=float(number("top_share", 0, 1 + 1e-9)),
            for_90pct=int(number("for_90pct", 0, 1e6, whole=True)),
            thumbnail=thumbnail,
        )


@torch.no_grad()
def take(
    model: BilinearMLP, target: UInt8[Tensor, "28 28"], step: int, steps_per_epoch: int, thumbnail: bool = True
) -> Snapshot:
    """Decompose the verdict's matrix of `model` as it is now (core.eigen.decompose) and keep its numbers."""
    direction, view = verdict_view()
    eigen = decompose(model, direction, view)
    top = top_eigenvector(eigen, target)
    return Snapshot(
        step=step,
        epoch=step / steps_per_epoch,
        direction=direction,
        view=view,
        cos=min(top.cos, 1.0),
        eigenvalue=top.eigenvalue,
        top_share=top_energy_share(eigen.eigenvalues),
        for_90pct=eigenvectors_for_90pct(eigen.eigenvalues),
        thumbnail=encode_thumbnail(top.image) if thumbnail else None,
    )


def first_epoch_steps(steps_per_epoch: int, looks: int = FIRST_EPOCH_LOOKS) -> frozenset[int]:
    """The steps inside the first epoch after which a snapshot is taken (its end is the epoch's own)."""
    return frozenset(round(steps_per_epoch * k / looks) for k in range(1, looks)) - {0, steps_per_epoch}


def epoch_ends(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """The snapshots taken at the end of an epoch (whole epochs), in order."""
    return [s for s in snapshots if s.step > 0 and float(s.epoch).is_integer()]


def kept_for_file(snapshots: Sequence[Snapshot], thumbnails: int = KEPT_THUMBNAILS) -> tuple[Snapshot, ...]:
    """What a checkpoint keeps: every snapshot's numbers, and the thumbnails of at most `thumbnails` of them
    (the first, the last and evenly spaced between; a run of 100 epochs keeps 12 pictures, not 104)."""
    with_image = [i for i, s in enumerate(snapshots) if s.thumbnail is not None]
    if len(with_image) <= thumbnails:
        return tuple(snapshots)
    chosen = {with_image[round(k * (len(with_image) - 1) / (thumbnails - 1))] for k in range(thumbnails)}
    return tuple(s if i in chosen else replace(s, thumbnail=None) for i, s in enumerate(snapshots))


def in_view(snapshots: Sequence[Snapshot], direction: str, view: str) -> list[Snapshot]:
    """The snapshots of one matrix (a model's file may hold some taken in another verdict view)."""
    return [s for s in snapshots if (s.direction, s.view) == (direction, view)]


def strip(snapshots: Sequence[Snapshot], at_most: int = 8) -> list[Snapshot]:
    """At most `at_most` snapshots with a thumbnail, the first and the last among them and evenly spaced
    between: the strip of pictures that shows how the target appeared."""
    with_image = [s for s in snapshots if s.thumbnail is not None]
    if len(with_image) <= at_most:
        return with_image
    picks = sorted({round(k * (len(with_image) - 1) / (at_most - 1)) for k in range(at_most)})
    return [with_image[i] for i in picks]


def strip_pixels(snapshots: Sequence[Snapshot], gap: int = 2) -> Float[Tensor, "28 w"]:
    """The thumbnails side by side in one (28, 28·n + gap·(n−1)) array, each at its own scale ([-1, 1]),
    with white (zero) columns between them: one picture for a slide (render.figures exports it)."""
    images = [s.image() for s in snapshots if s.thumbnail is not None]
    if not images:
        raise ValueError("no snapshot has a thumbnail")
    blank = torch.zeros(28, gap, dtype=torch.float64)
    parts = [part for image in images for part in (image, blank)][:-1]
    return torch.cat(parts, dim=1)


class Watcher:
    """Takes a training run's snapshots, within a time budget: `look(model, step)` decomposes the weights at
    `step` unless the last snapshot's cost is more than `budget` of the time since the previous one ended, so
    that snapshots never take more than `budget` of the training time (issue 27's goal: under 5 %).

    The first look (the initial weights) and every `final` one are always taken; `budget` None takes every
    one (tests). A snapshot's cost is measured, so a wide model (d_hidden 1024: ~1 s per eigendecomposition)
    gets fewer of them and its training stays as fast; at d_hidden 64 one takes ~1.4 ms, and a quarter of the
    quick preset's first epoch ~0.13 s.
    """

    def __init__(
        self,
        target: UInt8[Tensor, "28 28"],
        steps_per_epoch: int,
        budget: float | None = BUDGET,
        clock: Any = time.perf_counter,
    ) -> None:
        self.target, self.steps_per_epoch, self.budget, self.clock = target, steps_per_epoch, budget, clock
        self.spent = 0.0  # seconds spent on snapshots
        self.cost = 0.0  # the last snapshot's seconds
        self.last_end: float | None = None  # when the last snapshot was done
        self.taken = self.skipped = 0

    def look(self, model: BilinearMLP, step: int, final: bool = False) -> Snapshot | None:
        start = self.clock()
        waited = None if self.last_end is None else start - self.last_end
        if self.budget is not None and waited is not None and not final and self.cost > self.budget * waited:
            self.skipped += 1
            return None
        snapshot = take(model, self.target, step, self.steps_per_epoch)
        self.last_end = self.clock()
        self.cost = self.last_end - start
        self.spent += self.cost
        self.taken += 1
        return snapshot
