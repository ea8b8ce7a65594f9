"""Time DP-SGD with the study's network at the reference scale, and compare per-epoch ε reporting with an epoch.

The reference study: ResNet9 with GroupNorm (width 64, 32 groups), 512² radiographs, logical batch 128 in physical
batches of 32, N = 150,188 training images. A few hundred physical steps on random images give the time per image;
the epoch time is extrapolated to N. The per-epoch ε (Opacus RDP on the history, as privfair logs it) is timed at
the end of the last epoch, the dearest one, and reported as a share of the epoch.

Run: .venv/bin/python benchmarks/dp_epoch.py [--size 512] [--steps 40]   (on a GPU machine for the real figure)
"""

import argparse
import math
import time

import torch
from opacus import PrivacyEngine

from privfair.train.accounting import rdp_epsilon
from privfair.train.calibration import sampling
from privfair.train.models import build_model

N_TRAIN, LOGICAL, PHYSICAL, EPOCHS, DELTA = 150_188, 128, 32, 150, 6e-6


def time_steps(device, size: int, steps: int, activation: str) -> float:
    """Seconds per training image of DP-SGD (per-sample gradients, clipping, noise) at ``size``²."""
    model = build_model(2, 1, 8, width=64, num_groups=32, activation=activation).to(device)
    optimizer = torch.optim.NAdam(model.parameters(), lr=5e-4)
    data = torch.utils.data.TensorDataset(torch.randn(PHYSICAL, 1, size, size), torch.zeros(PHYSICAL, 8))
    loader = torch.utils.data.DataLoader(data, batch_size=PHYSICAL)
    model, optimizer, loader = PrivacyEngine(accountant="rdp").make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=0.6, max_grad_norm=1.5
    )
    x, y = (t.to(device) for t in data.tensors)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    for _ in range(3):  # warm-up: kernels, allocator
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / (steps * PHYSICAL)


def time_epsilon() -> float:
    """Seconds for one per-epoch ε after the last epoch (the full history of the reference schedule)."""
    sample_rate, steps = sampling(N_TRAIN, LOGICAL, EPOCHS)
    start = time.perf_counter()
    rdp_epsilon([(0.58, sample_rate, steps)], DELTA)
    return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40)
    arguments = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    epsilon_seconds = time_epsilon()
    for activation in ("relu", "mish"):
        per_image = time_steps(device, arguments.size, arguments.steps, activation)
        epoch = per_image * N_TRAIN
        print(
            f"{name}, ResNet9-GN ({activation}) at {arguments.size}², physical batch {PHYSICAL}: "
            f"{1 / per_image:.0f} images/s, one epoch of {N_TRAIN:,} images ≈ {epoch / 60:.1f} min; per-epoch ε "
            f"(RDP) {epsilon_seconds * 1000:.0f} ms = {100 * epsilon_seconds / epoch:.4f}% of it "
            f"({math.ceil(N_TRAIN / LOGICAL)} logical batches per epoch)"
        )
