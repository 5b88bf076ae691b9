"""Checkpoints as safetensors: weights plus the config, history and snapshots as JSON metadata.

The snapshots (core.snapshot: the top eigenvector's |cos|, λ, spectrum share and a few thumbnails per
epoch) are optional: files saved before they existed, like the shipped checkpoints, load with none.

Uploaded files are untrusted, so loading never unpickles anything and checks every tensor's
name, shape, dtype and finiteness against the config it carries before building a model.
"""

from __future__ import annotations

import json
import struct

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from core.config import Config
from core.model import D_INPUT, BilinearMLP
from core.snapshot import Snapshot, kept_for_file
from core.text import literal
from core.train import EpochMetrics

FORMAT = "bilinear-eigen-lab/1"
MAX_BYTES = 20 * 1024 * 1024  # d_hidden=1024 is ~7 MB; anything far larger is not ours
# Trained weights stay below 1 here (the shipped and grid checkpoints: 0.62 at most); past this bound the
# quadratic form's float64 sums lose every digit (3e38 gave a difference of 5e185 on Explain), so no page
# could state its numbers honestly.
MAX_ABS_WEIGHT = 1e3


class CheckpointError(ValueError):
    """The file is not a valid Bilinear Eigen Lab checkpoint; the message says why."""


def expected_shapes(d_hidden: int, d_output: int = 2) -> dict[str, tuple[int, ...]]:
    return {
        "embed.weight": (d_hidden, D_INPUT),
        "bilinear.weight": (2 * d_hidden, d_hidden),
        "bilinear.bias": (2 * d_hidden,),
        "head.weight": (d_output, d_hidden),
    }


def save_checkpoint(
    model: BilinearMLP, config: Config, history: list[EpochMetrics] = (), snapshots: tuple[Snapshot, ...] = ()
) -> bytes:
    """Serialise the model with its config, per-epoch history and snapshots (safetensors bytes); of the
    snapshots' thumbnails only a few are kept (core.snapshot.kept_for_file)."""
    tensors = {name: t.detach().float().contiguous() for name, t in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": json.dumps(config.to_dict()),
        "history": json.dumps([m.to_dict() for m in history]),
    }
    if snapshots:
        metadata["snapshots"] = json.dumps([s.to_dict() for s in kept_for_file(snapshots)])
    return st_save(tensors, metadata=metadata)


def load_snapshots(data: bytes, config: Config) -> tuple[Snapshot, ...]:
    """The snapshots a checkpoint carries (none for a file saved without), each valid, in the order they were
    taken and within the config's epochs; call it after load_checkpoint accepted the file. CheckpointError
    with the reason otherwise."""
    text = _metadata(data).get("snapshots")
    if text is None:
        return ()
    try:
        records = _json(text, "the checkpoint's snapshots")
        if not isinstance(records, list):
            raise ValueError("it is not a list")
        snapshots = tuple(Snapshot.from_dict(record) for record in records)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"the checkpoint's snapshots are invalid: {e}") from e
    steps = [s.step for s in snapshots]
    if steps != sorted(set(steps)) or any(s.epoch > config.epochs for s in snapshots):
        raise CheckpointError(
            "the checkpoint's snapshots are invalid: they must come in the order they were taken, "
            f"within the {config.epochs} epochs of its config"
        )
    return snapshots


def _json(text: str | bytes, what: str) -> object:
    """json.loads, with JSON nested too deeply for Python's parser (RecursionError) refused in the app's words."""
    try:
        return json.loads(text)
    except RecursionError:
        raise CheckpointError(f"{what} nests JSON too deeply to read; a checkpoint's is flat") from None


def _metadata(data: bytes) -> dict[str, str]:
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise CheckpointError("not a safetensors file: its header length runs past the end of the file")
    try:
        header = _json(data[8 : 8 + header_len], "not a safetensors file: its header")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"not a safetensors file: its header is not JSON ({e})") from e
    if not isinstance(header, dict):
        raise CheckpointError("not a safetensors file: its header is not a JSON object")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise CheckpointError("not a safetensors file: its __metadata__ is not a JSON object")
    return metadata


def _is_pickle(data: bytes) -> bool:
    """A pickle (protocol 2-5) or torch.save zip, and not a safetensors file that merely starts alike.

    A safetensors file starts with its header's length (8 bytes, little-endian) and then '{': a header
    of 640 bytes begins b"\\x80\\x02", like a pickle, so the magic bytes alone would refuse a good file.
    """
    if len(data) >= 9:
        (header_len,) = struct.unpack("<Q", data[:8])
        if header_len <= len(data) - 8 and data[8:9] == b"{":
            return False
    return data[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") or data[:4] == b"PK\x03\x04"


def _history(text: str, config: Config) -> list[EpochMetrics]:
    """The per-epoch records, each valid and all consistent with the config: epochs 1, 2, … of its plan."""
    try:
        records = _json(text, "the checkpoint's training history")
        if not isinstance(records, list):
            raise ValueError("it is not a list")
        history = [EpochMetrics.from_dict(record) for record in records]
    except (TypeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"the checkpoint's training history is invalid: {e}") from e
    for expected, m in enumerate(history, 1):
        if m.epoch != expected or m.epochs != config.epochs:
            raise CheckpointError(
                f"the checkpoint's training history is invalid: record {expected} is epoch {m.epoch} of {m.epochs}, "
                f"expected epoch {expected} of {config.epochs}"
            )
    return history


def load_checkpoint(data: bytes, max_bytes: int = MAX_BYTES) -> tuple[BilinearMLP, Config, list[EpochMetrics]]:
    """Validate and load checkpoint bytes; raises CheckpointError with a user-facing reason."""
    if len(data) > max_bytes:
        mb = 1024 * 1024  # the limit is 20 * 2**20 bytes: say "20 MB", not "21 MB" (20.97e6 bytes)
        raise CheckpointError(f"file is {len(data) / mb:.1f} MB; a checkpoint is at most {max_bytes / mb:.0f} MB")
    if _is_pickle(data):
        raise CheckpointError(
            "this is a pickle / torch.save file; only .safetensors checkpoints are "
            "accepted, because unpickling an uploaded file can run arbitrary code"
        )
    if len(data) < 8:
        raise CheckpointError("file is too short to be a safetensors checkpoint")
    metadata = _metadata(data)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"not a Bilinear Eigen Lab checkpoint (metadata format is {literal(metadata.get('format'))}, "
            f"expected {literal(FORMAT)})"
        )
    if not isinstance(metadata.get("config"), str):
        raise CheckpointError(
            "the checkpoint has no config (the settings it was trained with), so the app cannot tell what it is"
        )
    try:
        config = Config.from_dict(_json(metadata["config"], "the checkpoint's config"))
    except CheckpointError:
        raise
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"the checkpoint's config is invalid: {e}") from e
    history = _history(metadata.get("history", "[]"), config)
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"corrupt or truncated safetensors file: {e}") from e
    shapes = expected_shapes(config.d_hidden)
    missing, extra = set(shapes) - set(tensors), set(tensors) - set(shapes)
    if missing or extra:
        raise CheckpointError(f"wrong tensors: missing {sorted(missing)}, unexpected {sorted(extra)}")
    for name, shape in shapes.items():
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise CheckpointError(f"{name} has shape {tuple(t.shape)}, expected {shape} for d_hidden={config.d_hidden}")
        if t.dtype != torch.float32:
            raise CheckpointError(f"{name} has dtype {t.dtype}, expected float32")
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{name} contains NaN or infinite values")
        if t.abs().max() > MAX_ABS_WEIGHT:
            raise CheckpointError(
                f"{name} holds a weight of magnitude {float(t.abs().max()):.3g}; trained weights stay far below "
                f"{MAX_ABS_WEIGHT:g}, and past it the pages' float64 sums would lose every digit"
            )
    model = BilinearMLP(config.d_hidden, d_output=2)
    model.load_state_dict(tensors)
    model.eval()
    return model, config, history
