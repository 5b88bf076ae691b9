"""The class board's rows: who trained which model, with which settings, and how target-like it came out.

A classroom trains many models at once; the board (app_pages/class_board.py) lists every one of them
beside the 15 precomputed checkpoints, so the class sees Figure 6's question answered across the room:
does the top eigenvector of the bias-free True − False block look like the target, how much of the
spectrum does it carry, and how does that depend on the threshold and the weight decay? This module
turns one model's numbers into one `BoardRow` and words it (a table row, a caption, an image's alt
text); ui.board gathers the models and caches the eigendecomposition per model id. Pure Python: no torch, no Streamlit.

Students are anonymous: a session is known only by a random token (ui.models.token), which never leaves
the server. The board shows `nickname(token)` instead, an adjective and an animal picked by a salted
SHA-256 of the token: the same session always gets the same name, and the name says nothing about the
token. With 64 × 64 names, two students of a class of 30 share one with probability about 10 %.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from core.config import Config
    from core.snapshot import Snapshot
    from core.train import EpochMetrics

ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "cheery", "clever", "cosmic",
    "cosy", "curious", "daring", "dapper", "dreamy", "eager", "fluffy", "frosty",
    "gentle", "glad", "golden", "grand", "happy", "hardy", "humble", "jaunty",
    "jolly", "keen", "kind", "lively", "loyal", "lucky", "mellow", "merry",
    "mighty", "misty", "nifty", "nimble", "noble", "patient", "peppy", "perky",
    "placid", "plucky", "polite", "proud", "quick", "quiet", "rapid", "rosy",
    "shiny", "silver", "sleepy", "snowy", "sparkly", "spry", "steady", "sturdy",
    "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "zesty",
)  # fmt: skip
ANIMALS = (
    "alpaca", "badger", "bear", "beaver", "bison", "camel", "cheetah", "crane",
    "dingo", "dolphin", "eagle", "falcon", "ferret", "finch", "fox", "gecko",
    "gibbon", "hare", "hedgehog", "heron", "ibis", "jaguar", "kiwi", "koala",
    "lemur", "llama", "lynx", "magpie", "marmot", "mole", "moose", "newt",
    "ocelot", "orca", "owl", "panda", "parrot", "pelican", "penguin", "puffin",
    "quail", "rabbit", "raccoon", "raven", "robin", "salmon", "seal", "sloth",
    "sparrow", "squirrel", "stork", "swan", "tapir", "tiger", "toucan", "turtle",
    "walrus", "weasel", "whale", "wombat", "wren", "yak", "zebra", "otter",
)  # fmt: skip
SALT = b"bilinear-eigen-lab/class-board/nickname\x00"  # a nickname is not the plain hash of anything else
PRECOMPUTED = "precomputed"  # the grid's "nickname": trained before class
UNKNOWN = "an earlier session"  # a model whose trainer is unknown (read back from the store after a restart)
MAX_TIMEZONE = 64  # characters of a browser's time zone name we look at (it is untrusted text)


def counted(n: int, noun: str) -> str:
    """ "1 model", "4 models": a count with its noun in agreement (nouns whose plural adds an s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def nickname(token: str) -> str:
    """A short anonymous name for the session with this token, e.g. "brave otter" (deterministic)."""
    if not token:
        return UNKNOWN
    digest = hashlib.sha256(SALT + token.encode("utf-8", "replace")).digest()
    return f"{ADJECTIVES[digest[0] % len(ADJECTIVES)]} {ANIMALS[digest[1] % len(ANIMALS)]}"


@dataclass(frozen=True)
class BoardRow:
    """One model on the class board: who, when, its settings and what its weights show."""

    model_id: str
    who: str  # a nickname, or PRECOMPUTED for the grid
    added: float | None  # time.time() when the server got it; None for the precomputed grid
    origin: str  # "trained", "stopped" or "grid" (server.registry.Origin)
    config: Config  # the whole training Config
    epochs_done: int  # < config.epochs for a stopped run
    val_acc: float | None  # validation accuracy after the last epoch (None: no history)
    cos: float  # |cos| of the top eigenvector of the bias-free True − False block with the centred target
    eigenvalue: float  # its eigenvalue, the largest of the block
    top_share: float | None = None  # that eigenvalue's share of Σλ² (core.spectrum.top_energy_share)

    @property
    def precomputed(self) -> bool:
        return self.added is None

    @property
    def epochs(self) -> str:
        """'100', or '4 of 40' for a stopped run."""
        done, planned = self.epochs_done, self.config.epochs
        return f"{planned}" if done == planned else f"{done} of {planned}"

    @property
    def data(self) -> str:
        """'full MNIST' or '4,096 / 1,000' (the training slice: train / test images)."""
        c = self.config
        return f"{c.n_train:,} / {c.n_test or 10_000:,}" if c.n_train else "full MNIST"

    @property
    def settings(self) -> str:
        """The settings a student changes, in one short line (target, τ, weight decay, noise, epochs, slice)."""
        c = self.config
        return (
            f"target #{c.target_index} · τ {c.threshold:.2f} · wd {c.weight_decay:g} · noise {c.noise_std:g} · "
            f"{self.epochs} epochs · {self.data}"
        )


def board_row(
    model_id: str,
    config: Config,
    history: Sequence[EpochMetrics],
    origin: str,
    who: str,
    added: float | None,
    cos: float,
    eigenvalue: float,
    top_share: float | None = None,
) -> BoardRow:
    """One model's row: its settings and history as trained, and its top eigenvector's |cos| and λ
    (core.eigen.top_eigenvector of decompose(model, "true_minus_false", "bias_free"))."""
    if not (math.isfinite(cos) and 0.0 <= cos <= 1.0 + 1e-9):
        raise ValueError(f"|cos| must be in [0, 1], got {cos}")
    return BoardRow(
        model_id=model_id,
        who=who,
        added=added,
        origin=origin,
        config=config,
        epochs_done=history[-1].epoch if history else config.epochs,
        val_acc=history[-1].val_acc if history else None,
        cos=min(float(cos), 1.0),
        eigenvalue=float(eigenvalue),
        top_share=None if top_share is None else float(top_share),
    )


def zone(name: str | None) -> ZoneInfo | None:
    """The browser's time zone (st.context.timezone, untrusted text), or None if unknown or invalid."""
    if not name or len(name) > MAX_TIMEZONE:
        return None
    try:
        return ZoneInfo(name)
    except Exception:  # ValueError (a path), ZoneInfoNotFoundError, an OS error reading tzdata: unknown
        return None


def clock(added: float | None, timezone: str | None = None) -> str:
    """When a model arrived as a clock time, '14:02:11' in the student's time zone ('… UTC' if unknown)."""
    if added is None:
        return "before class"
    tz = zone(timezone)
    if tz is None:
        return time.strftime("%H:%M:%S UTC", time.gmtime(added))
    return datetime.fromtimestamp(added, tz).strftime("%H:%M:%S")


def caption(row: BoardRow, timezone: str | None = None) -> str:
    """An image's caption on the board: who, when, the two settings the grid varies, |cos|."""
    when = "" if row.precomputed else f" · {clock(row.added, timezone)}"
    return f"{row.who}{when} · τ {row.config.threshold:.2f} · wd {row.config.weight_decay:g} · |cos| {row.cos:.2f}"


def whose(row: BoardRow, timezone: str | None = None) -> str:
    """'the model brave-otter trained at 14:02:11', or 'the precomputed model'."""
    if row.precomputed:
        return "the precomputed model"
    return f"the model {row.who} {'stopped' if row.origin == 'stopped' else 'trained'} at {clock(row.added, timezone)}"


def describe(row: BoardRow, timezone: str | None = None, colours: str = "") -> str:
    """The alt text of a model's thumbnail: what it shows, whose model, its settings and its numbers."""
    accuracy = f", validation accuracy {row.val_acc:.1%}" if row.val_acc is not None else ""
    shown = f" ({colours})" if colours else ""
    return (
        f"Top eigenvector of the bias-free True − False block of {whose(row, timezone)} ({row.settings}{accuracy}) "
        "as a 28×28 "
        f"image{shown}: eigenvalue {row.eigenvalue:+.3f}, |cos| with the centred target {row.cos:.2f}"
    )


def appearance(
    row: BoardRow, kept: Sequence[Snapshot], timezone: str | None = None, colours: str = ""
) -> tuple[str, str]:
    """The caption and the alt text of a model's strip (core.snapshot.strip of its snapshots in the board's
    view): how its top eigenvector came to look like the target, or did not, while it trained."""
    if not kept:
        raise ValueError("a strip needs at least one snapshot")
    when = "" if row.precomputed else f" · {clock(row.added, timezone)}"
    title = f"{row.who}{when} · τ {row.config.threshold:.2f} · wd {row.config.weight_decay:g} · |cos| " + " → ".join(
        f"{s.cos:.2f}" for s in kept
    )
    shown = f" ({colours})" if colours else ""
    description = (
        f"How the target appeared in {whose(row, timezone)} ({row.settings}): the top eigenvector of its bias-free "
        f"True − False block at {len(kept)} moments of training, side by side, each 28×28 at its own scale{shown}: "
        + ", ".join(f"{s.label} |cos| {s.cos:.2f}" for s in kept)
    )
    return title, description


def label(row: BoardRow, timezone: str | None = None) -> str:
    """One line naming a model in a choice list (the teacher's pin)."""
    when = "precomputed" if row.precomputed else f"{row.who}, {clock(row.added, timezone)}"
    return f"{when} · τ {row.config.threshold:.2f} · wd {row.config.weight_decay:g} · |cos| {row.cos:.2f}"


def table(
    rows: Sequence[BoardRow], timezone: str | None = None, active: str | None = None, pinned: str | None = None
) -> list[dict[str, Any]]:
    """The board's table: one record per row, in the order given; `active` and `pinned` are model ids."""

    def marks(row: BoardRow) -> str:
        return " · ".join(
            word for word, on in (("pinned", row.model_id == pinned), ("yours", row.model_id == active)) if on
        )

    return [
        {
            "who": row.who,
            "when": clock(row.added, timezone),
            "target": row.config.target_index,
            "threshold τ": row.config.threshold,
            "weight decay": row.config.weight_decay,
            "noise": row.config.noise_std,
            "epochs": row.epochs,
            "data (train / test)": row.data,
            "val acc": row.val_acc,
            "|cos|": row.cos,
            "top share of Σλ²": row.top_share,
            "status": marks(row),
            "model": row.model_id,
        }
        for row in rows
    ]


def points(rows: Sequence[BoardRow], timezone: str | None = None) -> list[dict[str, Any]]:
    """The scatter's points (weight decay against |cos|, coloured by τ), with what a tooltip says."""
    return [
        {
            "weight decay": row.config.weight_decay,
            "|cos|": row.cos,
            "threshold": row.config.threshold,
            "who": row.who,
            "when": clock(row.added, timezone),
            "settings": row.settings,
            "validation accuracy": row.val_acc,
            "kind": "precomputed grid" if row.precomputed else "trained in class",
        }
        for row in rows
    ]
