"""The training loop a student can read: the seed's recipe in plain PyTorch, shaped like the
authors' `Model.fit()` (tdooms/bilinear-interp): autograd, `torch.optim.AdamW`, the cosine schedule
stepped once per epoch, shuffled batches with the last partial one dropped, and Gaussian noise
N(0, noise_std^2) added explicitly to every training pixel.

The app trains with `core.train.train`, which follows the same law faster: its own backward pass
and AdamW, and the pixel noise sampled through the embedding (see core.train's docstring).
tests/unit/test_reference_train.py checks that the two loops agree: the same steps without noise,
the same distributions of losses and gradients with it. Both yield the same EpochMetrics, so
`python -m core.reproduce --loop reference` runs the whole experiment with this one. (This loop always
draws the noise explicitly: config.noise_sampler chooses how the fast loop draws it.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from einops import rearrange

from core.config import Config
from core.labels import Splits
from core.model import BilinearMLP
from core.train import EpochMetrics, TrainingDiverged, evaluate


def train(
    model: BilinearMLP, splits: Splits, config: Config, should_stop: Callable[[], bool] | None = None
) -> Iterator[EpochMetrics]:
    """Train `model` in place, yielding one EpochMetrics per epoch (as core.train.train does)."""
    generator = torch.Generator().manual_seed(config.seed)  # shuffling and noise, deterministic per seed
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    n_batches = len(splits.train_x) // config.batch_size  # drop the last partial batch
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        lr, losses, correct = scheduler.get_last_lr()[0], [], 0  # lr: this epoch's learning rate
        model.train()
        order = torch.randperm(len(splits.train_x), generator=generator)[: n_batches * config.batch_size]
        for idx in rearrange(order, "(step batch) -> step batch", batch=config.batch_size):
            if should_stop is not None and should_stop():
                return
            x = rearrange(splits.train_x[idx], "batch h w -> batch (h w)").float() / 255  # (B, 784) in [0, 1]
            if config.noise_std > 0:  # (no draw without noise: the shuffles then match core.train's)
                x = x + config.noise_std * torch.randn(x.shape, generator=generator)  # x + eps, eps ~ N(0, s^2 I)
            y = splits.train_y[idx]  # (B,) 0 or 1
            logits = model(x)  # (B, 2)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            correct += (logits.argmax(dim=-1) == y).sum().item()
        scheduler.step()
        if not math.isfinite(train_loss := sum(losses) / n_batches):
            raise TrainingDiverged(
                f"training diverged in epoch {epoch}: the loss became {train_loss}. "
                f"Try a smaller learning rate than {config.lr:g}."
            )
        val_loss, val_acc = evaluate(model.eval(), splits.test_x, splits.test_y)
        yield EpochMetrics(
            epoch=epoch,
            epochs=config.epochs,
            lr=lr,
            seconds=time.perf_counter() - start,
            train_loss=train_loss,
            train_acc=correct / (n_batches * config.batch_size),
            val_loss=val_loss,
            val_acc=val_acc,
        )
