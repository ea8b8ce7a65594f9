"""Exponential moving average of the weights (``training.ema``), as in De et al. 2022 for DP-SGD.

After every optimiser step actually taken, ``ema = decay · ema + (1 − decay) · weights``, starting from the initial
weights. The EMA weights are the ones validated each epoch and kept as the best-validation checkpoint. No privacy
cost: they are a function of the sequence of (already private) weights, post-processing of the DP outputs, and the
training itself (its steps, q and noise) does not change.

The average is a dict of tensors of the raw network's parameters and buffers (never a copy of the Opacus-wrapped
module), so it goes into the resume snapshot as tensors (``weights_only`` loading) and loads with
``load_state_dict`` into the network the checkpoint rebuilds.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


class WeightEMA:
    """The moving average of ``net``'s state dict; :meth:`update` after each optimiser step.

    Args:
        net: the raw network (not an Opacus ``GradSampleModule``), whose state-dict keys the average shares.
        decay: in (0, 1); the weight of the average so far at each update.
    """

    def __init__(self, net: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.net, self.decay = net, decay
        self.averaged = {k: v.detach().clone() for k, v in net.state_dict().items()}

    @torch.no_grad()
    def update(self) -> None:
        current = self.net.state_dict()
        floats = [k for k, v in self.averaged.items() if v.is_floating_point()]
        if floats:
            torch._foreach_lerp_([self.averaged[k] for k in floats], [current[k] for k in floats], 1 - self.decay)
        for k, v in self.averaged.items():
            if not v.is_floating_point():  # integer buffers (none in ResNet9) follow the network
                v.copy_(current[k])

    @contextmanager
    def applied(self):
        """Within the block, ``net`` holds the averaged weights; its own are put back after, bit for bit."""
        own = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        self.net.load_state_dict(self.averaged)
        try:
            yield self.net
        finally:
            self.net.load_state_dict(own)

    def state_dict(self) -> dict:
        """The averaged weights, copied to the CPU (tensors only)."""
        return {k: v.detach().cpu().clone() for k, v in self.averaged.items()}

    def load_state_dict(self, state: dict) -> None:
        if state.keys() != self.averaged.keys():
            raise ValueError("the saved EMA weights are another network's")
        for k, v in self.averaged.items():
            v.copy_(state[k])
