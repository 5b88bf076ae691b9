"""MNIST as uint8 tensors, read from the IDX files bundled under data/mnist/.

The images stay uint8 (60000x28x28 = 47 MB for train); callers convert to float a batch at a
time with `to_float`, so no full float copy is ever held by the loader. If the bundled files are
missing we fall back to torchvision's downloader into a cache folder.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int, UInt8
from torch import Tensor

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bilinear-eigen-lab"
FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # IDX: 0x0803 = uint8 x 3 dims, 0x0801 = uint8 x 1 dim


class MNISTError(RuntimeError):
    """MNIST could not be loaded; the message says what was looked for and how to fix it."""


@dataclass(frozen=True)
class MNIST:
    train_x: UInt8[Tensor, "60000 28 28"]
    train_y: Int[Tensor, " 60000"]  # digit labels
    test_x: UInt8[Tensor, "10000 28 28"]
    test_y: Int[Tensor, " 10000"]


def to_float(x: UInt8[Tensor, "*batch 28 28"] | UInt8[Tensor, "*batch 784"]) -> Float[Tensor, "*batch 784"]:
    """uint8 images (..., 28, 28) or (..., 784) -> float32 (..., 784) in [0, 1], as the seed feeds the model."""
    if x.shape[-2:] == (28, 28):
        x = x.reshape(*x.shape[:-2], 784)
    return x.float().div_(255.0)


def read_idx(path: Path) -> torch.Tensor:
    """Read one gzipped IDX file (images or labels) into a uint8 tensor, validating its header."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise MNISTError(f"{path}: not a readable gzip file ({e}); re-copy it from the MNIST source") from e
    if len(raw) < 8:
        raise MNISTError(f"{path}: file is too short to be an IDX file ({len(raw)} bytes)")
    magic, n = struct.unpack(">II", raw[:8])
    if magic == IMAGE_MAGIC:
        if len(raw) < 16:
            raise MNISTError(f"{path}: image header is truncated")
        rows, cols = struct.unpack(">II", raw[8:16])
        shape, offset = (n, rows, cols), 16
    elif magic == LABEL_MAGIC:
        shape, offset = (n,), 8
    else:
        raise MNISTError(
            f"{path}: wrong magic number {magic:#010x}; expected {IMAGE_MAGIC:#010x} "
            f"(images) or {LABEL_MAGIC:#010x} (labels)"
        )
    expected = int(np.prod(shape))
    if len(raw) - offset != expected:
        raise MNISTError(
            f"{path}: header promises {expected} bytes of data for shape {shape}, "
            f"file holds {len(raw) - offset}: truncated or corrupt"
        )
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape).copy())


def load_from_dir(root: Path) -> MNIST:
    """Load the four IDX files from `root`, checking that they belong together."""
    parts = {key: read_idx(root / name) for key, name in FILES.items()}
    for split in ("train", "test"):
        x, y = parts[f"{split}_x"], parts[f"{split}_y"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise MNISTError(f"{root / FILES[split + '_x']}: images are {tuple(x.shape[1:])}, expected 28x28")
        if y.ndim != 1 or len(x) != len(y):
            raise MNISTError(f"{root}: {split} has {len(x)} images but {len(y)} labels")
        if int(y.max()) > 9:
            raise MNISTError(f"{root / FILES[split + '_y']}: labels outside 0-9")
    return MNIST(
        train_x=parts["train_x"], train_y=parts["train_y"].long(), test_x=parts["test_x"], test_y=parts["test_y"].long()
    )


class TorchvisionUnavailable(ImportError):
    """torchvision is not installed, or does not import beside this torch build."""


def _download_with_torchvision(cache_dir: Path) -> MNIST:
    try:  # only on this rare path; requirements.txt leaves torchvision out (see its comment)
        from torchvision.datasets import MNIST as TorchvisionMNIST
    except (ImportError, RuntimeError) as e:  # PyPI's torchvision beside the CPU torch: "operator ... does not exist"
        raise TorchvisionUnavailable(
            f"torchvision is not available here ({type(e).__name__}: {e}); the app's requirements leave it out, "
            "since PyPI's torchvision does not import beside PyTorch's CPU-only build"
        ) from e

    train = TorchvisionMNIST(str(cache_dir), train=True, download=True)
    test = TorchvisionMNIST(str(cache_dir), train=False, download=True)
    return MNIST(
        train_x=train.data.contiguous(),
        train_y=train.targets.long(),
        test_x=test.data.contiguous(),
        test_y=test.targets.long(),
    )


def load_mnist(root: Path | None = None, cache_dir: Path | None = None) -> MNIST:
    """MNIST from `root` (default: the bundled data/mnist/), else downloaded by torchvision.

    A corrupt bundled file raises MNISTError naming it; only *missing* files trigger the download.
    """
    root = Path(os.environ.get("BILINEAR_LAB_MNIST_DIR", root or BUNDLED_DIR))
    cache_dir = cache_dir or CACHE_DIR
    missing = [name for name in FILES.values() if not (root / name).is_file()]
    if not missing:
        return load_from_dir(root)
    try:
        return _download_with_torchvision(cache_dir)
    except TorchvisionUnavailable as e:
        raise MNISTError(
            f"MNIST not found: {root} lacks {', '.join(missing)}, and it cannot be downloaded: {e}. Fix: copy the "
            f"four MNIST .gz files into {root} (or set BILINEAR_LAB_MNIST_DIR to a folder holding them), or "
            "`pip install torchvision` matching your torch build to download them once."
        ) from e
    except Exception as e:  # network down, disk full: all mean the same to a user
        raise MNISTError(
            f"MNIST not found: {root} lacks {', '.join(missing)}, and downloading it with torchvision "
            f"into {cache_dir} failed ({type(e).__name__}: {e}). Fix: copy the four MNIST .gz files "
            f"into {root} (or set BILINEAR_LAB_MNIST_DIR to a folder holding them), or go online once."
        ) from e
