"""Snapshots (core.snapshot): each one's numbers are a decomposition of the weights at that step, taken once per
run by the server's training pool, and they travel with the model through checkpoints and the CLI JSON."""

from __future__ import annotations

import base64
import io
import json
import threading

import pytest
import torch
from PIL import Image
from safetensors.torch import save as st_save

from core.checkpoint import CheckpointError, load_checkpoint, load_snapshots, save_checkpoint
from core.config import Config
from core.eigen import centered
from core.findings import verdict_view
from core.labels import Splits
from core.model import BilinearMLP
from core.snapshot import (
    Snapshot,
    Watcher,
    decode_thumbnail,
    encode_thumbnail,
    first_epoch_steps,
    kept_for_file,
    strip,
    strip_pixels,
    take,
)
from core.tensor import interaction_tensor
from core.train import new_model, train
from server.jobs import TrainingPool
from tests.manual_clock import Clock

CONFIG = Config(d_hidden=12, epochs=3, batch_size=64, lr=5e-3, weight_decay=1.0, n_train=512, n_test=128, seed=3)
STEPS = 512 // 64  # per epoch


@pytest.fixture(scope="module")
def data():
    """Random images labelled by their overlap with a random target: a task with a quadratic answer."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (640, 28, 28), dtype=torch.uint8, generator=g)
    target = images[0]
    score = (images.reshape(640, -1).double() / 255) @ centered(target)
    labels = (score > score.median()).long()
    return Splits(images[:512], labels[:512], images[512:], labels[512:]), target


def direct(state: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, float]:
    """The snapshot's numbers recomputed from saved weights alone: B of the verdict's matrix by its definition,
    eigh, the top eigenvector through W_e', its |cos| with the centred target, the spectrum's concentration."""
    model = BilinearMLP(CONFIG.d_hidden, d_output=2)
    model.load_state_dict(state)
    direction, view = verdict_view()
    tensor = interaction_tensor(model)
    matrix = tensor.direction(direction)
    if view == "bias_free":
        matrix = matrix[:-1, :-1]
    values, vectors = torch.linalg.eigh(matrix)  # ascending
    pixels = tensor.weights.W_e[: len(matrix)].T @ vectors[:, -1]  # (785,)
    t = centered(target)
    cos = float(abs(pixels[:784] @ t) / (pixels[:784].norm() * t.norm()))
    squares = torch.sort(values**2, descending=True).values
    needed = int((squares.cumsum(0) < 0.9 * squares.sum()).sum()) + 1
    return {"cos": cos, "eigenvalue": float(values[-1]), "share": float(values[-1] ** 2 / squares.sum()), "n": needed}


def weights_at(step: int, splits: Splits) -> dict[str, torch.Tensor]:
    """The weights after `step` optimiser steps, from a run of its own stopped there (core.train writes the weights
    back when it stops), saved to a checkpoint and read back: independent of the snapshots' own path."""
    model, polls = new_model(CONFIG), iter(range(10**9))
    for _ in train(model, splits, CONFIG, should_stop=lambda: next(polls) >= step):
        pass
    loaded, _, _ = load_checkpoint(save_checkpoint(model, CONFIG))
    return loaded.state_dict()


@pytest.fixture(scope="module")
def pool_run(data):
    """A real training through the server's pool (no time budget), and the weights at every step a snapshot
    should describe: the initial ones, the watched steps of epoch 1 and every epoch's end."""
    splits, target = data
    done = threading.Event()
    published = []

    def publish(trained):
        published.append(trained)
        done.set()
        return trained

    pool = TrainingPool(train, publish, workers=1, threads_alone=1, target=lambda config: target, snapshot_budget=None)
    job = pool.submit(CONFIG, splits, "student")
    assert job.done.wait(120), "the training finished"
    saved = {s.step: weights_at(s.step, splits) for s in job.snapshots}
    return job, published[0], saved, target


def test_every_snapshot_is_the_decomposition_of_the_weights_at_its_step(pool_run):
    job, trained, saved, target = pool_run
    steps = [s.step for s in job.snapshots]
    assert steps == [0, *sorted(first_epoch_steps(STEPS)), *(e * STEPS for e in range(1, CONFIG.epochs + 1))]
    for snapshot in job.snapshots:
        expected = direct(saved[snapshot.step], target)
        assert (snapshot.direction, snapshot.view) == verdict_view()
        assert snapshot.epoch == pytest.approx(snapshot.step / STEPS)
        assert snapshot.cos == pytest.approx(expected["cos"], abs=1e-9)
        assert snapshot.eigenvalue == pytest.approx(expected["eigenvalue"], abs=1e-9)
        assert snapshot.top_share == pytest.approx(expected["share"], abs=1e-9)
        assert snapshot.for_90pct == expected["n"]
        image = snapshot.image()  # the thumbnail: the top eigenvector's pixels, signed towards the target
        assert float(image.flatten() @ centered(target)) >= 0
        assert float(image.abs().max()) == pytest.approx(1.0)
    assert trained.snapshots == job.snapshots, "the published model carries its snapshots"


def test_the_snapshots_travel_in_the_checkpoint_and_match_the_weights_saved_at_each_epoch(pool_run):
    _, trained, saved, target = pool_run
    data_ = save_checkpoint(trained.model, trained.config, list(trained.history), trained.snapshots)
    _, config, _ = load_checkpoint(data_)
    loaded = load_snapshots(data_, config)
    assert [s.to_dict() for s in loaded] == [s.to_dict() for s in kept_for_file(trained.snapshots)]
    for epoch in range(1, CONFIG.epochs + 1):  # a checkpoint saved at each epoch: its snapshot is its weights'
        model = new_model(CONFIG)
        model.load_state_dict(saved[epoch * STEPS])
        at_epoch = load_snapshots(save_checkpoint(model, CONFIG, [], trained.snapshots), CONFIG)
        s = next(s for s in at_epoch if s.step == epoch * STEPS)
        assert s.cos == pytest.approx(take(model, target, epoch * STEPS, STEPS).cos, abs=1e-12)
        assert s.cos == pytest.approx(direct(saved[epoch * STEPS], target)["cos"], abs=1e-9)


def test_a_stopped_run_keeps_the_snapshots_up_to_its_last_epoch(pool_run):
    job, *_ = pool_run
    kept = job.model_so_far()
    assert kept.snapshots and kept.snapshots[-1].step == CONFIG.epochs * STEPS


def test_a_file_keeps_every_number_and_a_dozen_thumbnails():
    image = torch.randn(28, 28, dtype=torch.float64)
    snapshots = [
        Snapshot(i, float(i), "true_minus_false", "augmented", 0.5, 0.1, 0.3, 4, encode_thumbnail(image))
        for i in range(40)
    ]
    kept = kept_for_file(snapshots)
    with_images = [s.step for s in kept if s.thumbnail is not None]
    assert len(kept) == 40 and len(with_images) == 12 and with_images[0] == 0 and with_images[-1] == 39
    assert [s.cos for s in kept] == [s.cos for s in snapshots]
    assert [s.step for s in strip(snapshots, at_most=5)] == [0, 10, 20, 29, 39]  # evenly spaced, both ends
    row = strip_pixels(strip(kept, at_most=5), gap=2)
    assert row.shape == (28, 5 * 28 + 4 * 2)
    assert torch.equal(row[:, :28], decode_thumbnail(encode_thumbnail(image)))


def test_a_thumbnail_is_the_image_within_half_a_level():
    image = torch.randn(28, 28, dtype=torch.float64)
    decoded = decode_thumbnail(encode_thumbnail(image))
    assert (decoded - image / image.abs().max()).abs().max() <= 0.5 / 127 + 1e-12


def test_the_shipped_checkpoints_load_without_snapshots():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "checkpoints"
    files = [root / "seed-default.safetensors", *sorted((root / "grid").glob("*.safetensors"))]
    assert len(files) == 16
    for path in files:
        data = path.read_bytes()
        _, config, _ = load_checkpoint(data)
        assert load_snapshots(data, config) == ()


GOOD = Snapshot(4, 1.0, "true_minus_false", "augmented", 0.8, 0.2, 0.5, 3, bytes(784)).to_dict()


@pytest.mark.parametrize(
    "record, reason",
    [
        ({**GOOD, "cos": 1.5}, "cos must be"),
        ({**GOOD, "cos": float("nan")}, "cos must be"),
        ({**GOOD, "step": True}, "step must be a whole number"),
        ({**GOOD, "view": "<script>"}, "unknown snapshot matrix"),
        ({**GOOD, "thumbnail": base64.b64encode(bytes(10)).decode()}, "784 int8"),
        ({**GOOD, "thumbnail": "not base64!"}, "784 int8"),
        ({**GOOD, "epoch": 7.0}, "within the 2 epochs"),
        ({k: v for k, v in GOOD.items() if k != "top_share"}, "exactly the keys"),
    ],
)
def test_lying_snapshots_are_refused(record, reason):
    config = Config(d_hidden=8, epochs=2)
    tensors = {k: v.clone() for k, v in new_model(config).state_dict().items()}
    data = st_save(
        tensors,
        metadata={
            "format": "bilinear-eigen-lab/1",
            "config": json.dumps(config.to_dict()),
            "history": "[]",
            "snapshots": json.dumps([record]),
        },
    )
    load_checkpoint(data)  # the rest of the file is fine
    with pytest.raises(CheckpointError, match=reason):
        load_snapshots(data, config)


def test_the_watcher_skips_snapshots_that_would_cost_more_than_its_budget(monkeypatch, data):
    _, target = data
    clock = Clock()
    cost = 0.1  # each snapshot "takes" 0.1 s on the fake clock

    def slow_take(*args, **kwargs):
        clock.now += cost
        return "snapshot"

    monkeypatch.setattr("core.snapshot.take", slow_take)
    watcher = Watcher(target, 10, budget=0.05, clock=clock)
    model = new_model(CONFIG)
    assert watcher.look(model, 0) == "snapshot"  # the first is always taken
    clock.now += 1.0  # 0.1 s is 10 % of 1 s: over the budget
    assert watcher.look(model, 1) is None
    assert watcher.look(model, 2, final=True) == "snapshot"  # the last is always taken
    clock.now += 2.5  # 0.1 s is 4 % of 2.5 s
    assert watcher.look(model, 3) == "snapshot"
    assert (watcher.taken, watcher.skipped) == (3, 1)
    assert watcher.spent == pytest.approx(0.3)


def test_the_strip_exports_for_slides_as_one_figure():
    from render import figures

    images = [torch.randn(28, 28, dtype=torch.float64) for _ in range(3)]
    kept = [
        Snapshot(i, float(i), "true_minus_false", "augmented", 0.5, 0.1, 0.3, 4, encode_thumbnail(image))
        for i, image in enumerate(images)
    ]
    figure = figures.pixels(strip_pixels(kept), "strip", "How the target appeared", "three", figures.Settings(CONFIG))
    svg = figures.render(figure, "svg").decode()
    assert svg.count("<rect") >= 3 * 28 * 28, "one rect per pixel of every thumbnail"
    png = Image.open(io.BytesIO(figures.render(figure, "png")))
    assert png.width > 3 * 28 * figures.CELL * figures.PNG_SCALE * 0.9
    screen = Image.open(io.BytesIO(figure.screen_png()))
    assert screen.size == (3 * 28 + 2 * 2, 28)
