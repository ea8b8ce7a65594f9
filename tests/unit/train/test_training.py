import math

import pytest
import torch
from opacus import GradSampleModule
from opacus.validators import ModuleValidator

from privfair.core.errors import ConfigError
from privfair.train import loop as training
from privfair.train.models import ResNet9, build_model
from privfair.train.predict import load_model
from privfair.train.privacy import resolve_delta


@pytest.mark.parametrize("spatial_dims, shape", [(2, (1, 32, 32)), (3, (1, 16, 16, 16))])
def test_models_are_valid_for_opacus_at_every_layer(spatial_dims, shape):
    model = build_model(spatial_dims, 1, 3, width=8, num_groups=4)
    assert ModuleValidator.validate(model, strict=False) == []
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert not any(getattr(m, "inplace", False) for m in model.modules())
    assert model(torch.zeros(2, *shape)).shape == (2, 3)


def test_per_sample_gradients_match_single_sample_gradients():
    # Seeded and in float64: in float32, entries near zero made the comparison flaky.
    torch.manual_seed(0)
    model = ResNet9(2, 1, 2, width=8, num_groups=4).double()
    x = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    gsm = GradSampleModule(model, loss_reduction="sum")
    gsm(x).sum().backward()
    per_sample = [p.grad_sample[1].clone() for p in model.parameters()]
    model.zero_grad()
    ResNet9.forward(model, x[1:2]).sum().backward()
    for a, p in zip(per_sample, model.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-7, atol=1e-9)


def test_group_count_must_divide_width():
    with pytest.raises(ValueError, match="num_groups"):
        ResNet9(2, 1, 2, width=10, num_groups=4)


def test_delta_must_be_below_one_over_n():
    assert resolve_delta(None, 1000) == pytest.approx(1e-4)
    assert resolve_delta(5e-4, 1000) == 5e-4
    with pytest.raises(ConfigError, match=r"training\.privacy\.delta"):
        resolve_delta(1e-3, 1000)


def test_private_training_spends_at_most_the_budget(tiny_cache, training_settings):
    result = training.train_model(*tiny_cache, training_settings, epsilon=2.0, seed=0, log=lambda _: None)
    record = result.privacy
    assert record.private and record.noise_multiplier > 0
    assert record.epsilon_spent <= 2.0 + 1e-6
    assert record.epsilon_spent > 1.0  # σ is calibrated to the budget, not far beyond it
    assert record.delta < 1 / record.n_train
    assert record.steps == record.epochs * round(1 / record.sample_rate)
    assert list(result.history["epsilon_rdp"]) == sorted(result.history["epsilon_rdp"])


def test_nonprivate_training_has_no_noise_and_learns(tiny_cache, training_settings):
    training_settings["epochs"] = 4
    result = training.train_model(*tiny_cache, training_settings, epsilon=math.inf, seed=0, log=lambda _: None)
    assert not result.privacy.private
    assert result.privacy.noise_multiplier == 0 and math.isinf(result.privacy.epsilon_spent)
    assert result.history["val_auroc"].max() > 0.9


def test_same_seed_same_model_other_seed_other_model(tiny_cache, training_settings):
    training_settings["epochs"] = 1
    runs = [
        training.train_model(*tiny_cache, training_settings, epsilon=4.0, seed=s, log=lambda _: None) for s in (1, 1, 2)
    ]
    first, again, other = (r.state_dict["classifier.weight"] for r in runs)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_best_epoch_is_chosen_on_validation(tiny_cache, training_settings, tmp_path):
    training_settings["epochs"] = 3
    result = training.train_model(*tiny_cache, training_settings, epsilon=math.inf, seed=0, log=lambda _: None)
    assert result.best_epoch == int(result.history.loc[result.history["val_auroc"].idxmax(), "epoch"])
    training.save_checkpoint(tmp_path / "model.pt", result)
    model, checkpoint = load_model(tmp_path / "model.pt", torch.device("cpu"))
    assert checkpoint["best_epoch"] == result.best_epoch
    torch.testing.assert_close(model.state_dict()["classifier.weight"], result.state_dict["classifier.weight"])


def test_ghost_clipping_mode_trains(tiny_cache, training_settings):
    training_settings["privacy"]["grad_sample_mode"] = "ghost"
    training_settings["epochs"] = 1
    result = training.train_model(*tiny_cache, training_settings, epsilon=4.0, seed=0, log=lambda _: None)
    assert result.privacy.noise_multiplier > 0 and result.privacy.epsilon_spent <= 4.0 + 1e-6


def test_the_log_gives_each_epoch_time_and_the_time_left():
    history = [{"epoch": 1, "seconds": 10.0}, {"epoch": 2, "seconds": 14.0}]
    assert training._eta(history, epochs=10) == "0m14s this epoch, about 1m36s to go"  # 8 epochs × 12 s
    assert training._eta([{"epoch": 3, "seconds": 4000.0}], epochs=10).endswith("about 7h46m to go")  # 7 × 4000 s
