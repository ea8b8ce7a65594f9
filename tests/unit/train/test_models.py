"""The network's options: the activation (ReLU or Mish) keeps the model valid for Opacus, per sample."""

import math

import pytest
import torch
from monai.networks.blocks.activation import Mish
from opacus import GradSampleModule
from opacus.validators import ModuleValidator

from privfair.train.loop import save_checkpoint, train_model
from privfair.train.models import ResNet9, build_model
from privfair.train.predict import load_model


@pytest.mark.parametrize("spatial_dims, shape", [(2, (1, 16, 16)), (3, (1, 8, 8, 8))])
def test_mish_replaces_every_relu_and_stays_valid_for_opacus(spatial_dims, shape):
    relu = build_model(spatial_dims, 1, 3, width=8, num_groups=4)
    mish = build_model(spatial_dims, 1, 3, width=8, num_groups=4, activation="mish")
    n_relu = sum(isinstance(m, torch.nn.ReLU) for m in relu.modules())
    assert n_relu == sum(isinstance(m, Mish) for m in mish.modules()) > 0
    assert not any(isinstance(m, torch.nn.ReLU) for m in mish.modules())
    assert ModuleValidator.validate(mish, strict=False) == []
    assert not any(getattr(m, "inplace", False) for m in mish.modules())
    assert mish(torch.zeros(2, *shape)).shape == (2, 3)


def test_mish_per_sample_gradients_match_single_sample_gradients():
    torch.manual_seed(0)
    model = ResNet9(2, 1, 2, width=8, num_groups=4, activation="mish").double()
    x = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    GradSampleModule(model, loss_reduction="sum")(x).sum().backward()
    per_sample = [p.grad_sample[1].clone() for p in model.parameters()]
    model.zero_grad()
    ResNet9.forward(model, x[1:2]).sum().backward()
    for a, p in zip(per_sample, model.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-7, atol=1e-9)


def test_an_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation must be one of"):
        ResNet9(2, 1, 2, width=8, num_groups=4, activation="gelu")


def test_a_mish_model_trains_and_is_rebuilt_as_mish_from_its_checkpoint(tiny_cache, training_settings, tmp_path):
    settings = {**training_settings, "model": {**training_settings["model"], "activation": "mish"}}
    result = train_model(*tiny_cache, settings, epsilon=math.inf, seed=0, log=lambda line: None)
    assert result.model_spec["activation"] == "mish"
    save_checkpoint(tmp_path / "model.pt", result)
    model, _ = load_model(tmp_path / "model.pt", torch.device("cpu"))
    assert any(isinstance(m, Mish) for m in model.modules())
