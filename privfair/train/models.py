"""ResNet9 with GroupNorm, in 2D (radiographs) and 3D (CT volumes).

The reference study uses the ResNet9 of Klause et al. with GroupNorm, which differential privacy needs: BatchNorm
mixes samples of a batch, so per-sample gradients would not be per-sample. Every block is built from MONAI's
``Convolution`` with an explicit, non-in-place activation because Opacus' hooks reject in-place operations on
hooked outputs (MONAI's own ``ResNet`` keeps BatchNorm and in-place ReLU inside its blocks). The activation is ReLU
or Mish; the reference study's DP models use Mish, whose smooth gradient suits clipped, noisy updates.
"""

from __future__ import annotations

from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Pool
from opacus.validators import ModuleValidator
from torch import nn

ACTIVATIONS = {"relu": ("relu", {"inplace": False}), "mish": ("mish", {"inplace": False})}


def conv_block(
    spatial_dims: int, in_channels: int, out_channels: int, num_groups: int, pool: bool = False, activation="relu"
):
    """3×3 convolution → GroupNorm → activation (``relu`` or ``mish``), optionally followed by 2× max pooling."""
    layers = [
        Convolution(
            spatial_dims,
            in_channels,
            out_channels,
            kernel_size=3,
            norm=("group", {"num_groups": num_groups}),
            act=ACTIVATIONS[activation],
        )
    ]
    if pool:
        layers.append(Pool["max", spatial_dims](kernel_size=2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """``x + f(x)``, written out of place so that Opacus can hook ``f``."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class ResNet9(nn.Module):
    """ResNet9 (prep, 3 stages, 2 residual blocks, global max pool, linear head) for 2D or 3D inputs.

    ``width`` is the channel count of the first stage (64 in the reference study); stages use 1, 2, 4 and 8 times
    it. ``num_groups`` must divide ``width``. ``activation`` is ``relu`` or ``mish``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        width: int = 64,
        num_groups: int = 32,
        activation: str = "relu",
    ):
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if width % num_groups:
            raise ValueError(f"num_groups ({num_groups}) must divide width ({width})")
        c = [width, 2 * width, 4 * width, 8 * width]

        def block(i, o, pool=False):
            return conv_block(spatial_dims, i, o, num_groups, pool, activation)

        self.features = nn.Sequential(
            block(in_channels, c[0]),
            block(c[0], c[1], pool=True),
            Residual(nn.Sequential(block(c[1], c[1]), block(c[1], c[1]))),
            block(c[1], c[2], pool=True),
            block(c[2], c[3], pool=True),
            Residual(nn.Sequential(block(c[3], c[3]), block(c[3], c[3]))),
            Pool["adaptivemax", spatial_dims](1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(c[3], num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def build_model(
    spatial_dims: int, in_channels: int, num_classes: int, width: int, num_groups: int, activation: str = "relu"
) -> nn.Module:
    """Build the study's network and check that Opacus can train it privately (raises if not)."""
    model = ResNet9(spatial_dims, in_channels, num_classes, width=width, num_groups=num_groups, activation=activation)
    ModuleValidator.validate(model, strict=True)
    return model


def model_from_spec(spec: dict) -> nn.Module:
    """The network a checkpoint's model spec describes (what training saves and prediction rebuilds).

    Args:
        spec: ``spatial_dims``, ``in_channels``, ``labels``, ``width``, ``num_groups`` and optionally ``activation``
            (``relu`` when absent: the checkpoints and configs from before the option).

    Returns:
        The network, validated for Opacus, with fresh weights.
    """
    return build_model(
        spec["spatial_dims"],
        spec["in_channels"],
        len(spec["labels"]),
        spec["width"],
        spec["num_groups"],
        spec.get("activation", "relu"),
    )
