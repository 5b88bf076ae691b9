"""core.data: the bundled MNIST loads correctly, and every broken file gives a clear error."""

import gzip
import shutil
import struct

import pytest
import torch

from core import data
from core.data import FILES, MNISTError, load_from_dir, load_mnist, read_idx, to_float


def test_bundled_mnist_matches_published_checks(mnist):
    assert mnist.train_x.shape == (60000, 28, 28) and mnist.train_x.dtype == torch.uint8
    assert mnist.test_x.shape == (10000, 28, 28) and mnist.test_x.dtype == torch.uint8
    assert mnist.train_y.dtype == torch.int64 and mnist.test_y.dtype == torch.int64
    assert mnist.train_y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.train_y.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    x = to_float(mnist.train_x)
    assert x.shape == (60000, 784)
    assert x.mean().item() == pytest.approx(0.1307, abs=1e-4)
    assert x.std().item() == pytest.approx(0.3081, abs=1e-4)


@pytest.fixture()
def mnist_copy(tmp_path):
    for name in FILES.values():
        shutil.copy(data.BUNDLED_DIR / name, tmp_path / name)
        (tmp_path / name).chmod(0o644)
    return tmp_path


def _write_gz(path, raw: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(raw)


def test_truncated_gzip_names_the_file(mnist_copy):
    path = mnist_copy / FILES["test_y"]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(MNISTError, match="t10k-labels"):
        load_from_dir(mnist_copy)


def test_not_gzip_names_the_file(mnist_copy):
    (mnist_copy / FILES["train_y"]).write_bytes(b"this is not gzip at all")
    with pytest.raises(MNISTError, match=r"train-labels.*gzip"):
        load_from_dir(mnist_copy)


def test_wrong_magic_number(tmp_path):
    _write_gz(tmp_path / "x.gz", struct.pack(">II", 1234, 3) + b"\0\0\0")
    with pytest.raises(MNISTError, match=r"x\.gz: wrong magic number"):
        read_idx(tmp_path / "x.gz")


def test_wrong_size_is_reported_not_a_reshape_traceback(tmp_path):
    _write_gz(tmp_path / "imgs.gz", struct.pack(">IIII", 2051, 2, 28, 28) + bytes(28 * 28))  # 1 of 2 images
    with pytest.raises(MNISTError, match=r"imgs\.gz: header promises 1568 bytes"):
        read_idx(tmp_path / "imgs.gz")


def test_mismatched_image_and_label_counts(mnist_copy):
    _write_gz(mnist_copy / FILES["test_y"], struct.pack(">II", 2049, 3) + bytes(3))
    with pytest.raises(MNISTError, match="10000 images but 3 labels"):
        load_from_dir(mnist_copy)


def test_missing_files_and_no_network_give_one_clear_error(tmp_path, monkeypatch):
    def offline(cache_dir):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(data, "_download_with_torchvision", offline)
    with pytest.raises(MNISTError) as info:
        load_mnist(root=tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "nowhere" in message and "train-images-idx3-ubyte.gz" in message
    assert "cache" in message and "network unreachable" in message and "Fix:" in message


@pytest.mark.parametrize("broken", ["not installed", "does not import"])
def test_missing_files_without_torchvision_say_so(tmp_path, monkeypatch, broken):
    """requirements.txt leaves torchvision out (the CPU torch build): the fallback says it is unavailable."""
    import builtins

    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name.startswith("torchvision"):
            if broken == "not installed":
                raise ModuleNotFoundError("No module named 'torchvision'")
            raise RuntimeError("operator torchvision::nms does not exist")  # PyPI's torchvision beside CPU torch
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    with pytest.raises(MNISTError) as info:
        load_mnist(root=tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "torchvision is not available here" in message and "cannot be downloaded" in message
    assert "train-images-idx3-ubyte.gz" in message and "Fix:" in message and "BILINEAR_LAB_MNIST_DIR" in message


def test_missing_files_fall_back_to_download(tmp_path, monkeypatch, mnist):
    calls = []
    monkeypatch.setattr(data, "_download_with_torchvision", lambda cache_dir: calls.append(cache_dir) or mnist)
    assert load_mnist(root=tmp_path, cache_dir=tmp_path / "c") is mnist
    assert calls == [tmp_path / "c"]


def test_env_var_overrides_the_folder(mnist_copy, monkeypatch):
    (mnist_copy / FILES["train_x"]).write_bytes(b"broken")
    monkeypatch.setenv("BILINEAR_LAB_MNIST_DIR", str(mnist_copy))
    with pytest.raises(MNISTError, match=str(mnist_copy)):
        load_mnist()
