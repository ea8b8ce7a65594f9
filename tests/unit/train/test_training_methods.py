"""Augmentation, augmentation multiplicity and EMA of the weights: accurate DP models at the same steps and q."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from conftest import TRAINING, write_cache
from opacus import GradSampleModule

from privfair.core.errors import ConfigError
from privfair.core.stats import masked_macro_auroc
from privfair.data.cache import load_splits
from privfair.train import loop as training
from privfair.train.augment import AugmentedViews
from privfair.train.calibration import calibrate_noise
from privfair.train.models import ResNet9
from privfair.train.predict import predict_logits

# Per-sample gradient hooks fire on the first layer although the images need no gradient.
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")

AUGMENTATION = {"flip": True, "rotate_degrees": 10, "scale": 0.1, "translate": 0.05}


def quiet(_):
    pass


def tiny_settings(**changes):
    settings = copy.deepcopy(TRAINING)
    settings["model"] = {"width": 4, "num_groups": 2}
    settings["privacy"]["accountant"] = "rdp"  # calibrates in milliseconds
    settings["epochs"] = 1
    settings.update(changes)
    return settings


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_cache(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    """σ for ε = 4 over one epoch of the cache's 64 images, calibrated once (seconds) for every run here."""
    path = tmp_path_factory.mktemp("noise") / "noise.json"
    path.write_text(json.dumps(calibrate_noise(64, 4.0, tiny_settings(), key="test")))
    return path


def private_run(cache, calibration, init_path=None, **option):
    return training.train_model(
        *cache,
        tiny_settings(**option),
        epsilon=4.0,
        seed=0,
        log=quiet,
        calibration_path=calibration,
        init_path=init_path,
    )


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A checkpoint of the tiny network, as rule pretrain writes one."""
    path = tmp_path_factory.mktemp("pretrained") / "model.pt"
    torch.manual_seed(1)
    spec = {"spatial_dims": 2, "in_channels": 1, "labels": ["a", "b"], "width": 4, "num_groups": 2}
    torch.save({"state_dict": ResNet9(2, 1, 2, width=4, num_groups=2).state_dict(), "model": spec}, path)
    return path


@pytest.fixture(scope="module")
def baseline(cache, calibration):
    return private_run(cache, calibration).privacy


# --- augmentation multiplicity: per-sample gradients -------------------------------------------------------------


def wrapped_model(seed=0):
    """A tiny ResNet9 in float64 (exact comparisons), a copy of it, and the copy wrapped for per-sample gradients."""
    torch.manual_seed(seed)
    net = ResNet9(2, 1, 2, width=4, num_groups=2).double()
    return net, GradSampleModule(copy.deepcopy(net), loss_reduction="mean")


def criterion():
    return training.WeightedBCE(torch.tensor([1.5, 0.5], dtype=torch.float64))


def batch(b, k=None, seed=1):
    generator = torch.Generator().manual_seed(seed)
    shape = (b, 1, 8, 8) if k is None else (b, k, 1, 8, 8)
    x = torch.rand(shape, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 2, (b, 2), generator=generator).double()
    y[0, 1] = torch.nan  # a masked label
    return x, y


def grad_samples(gsm):
    return [p.grad_sample.clone() for p in gsm.parameters()]


def test_one_view_gives_the_per_sample_gradients_of_plain_batches():
    _, gsm = wrapped_model()
    params, loss = list(gsm.parameters()), criterion()
    x, y = batch(4)
    training._forward_backward(gsm, loss, x, y, 1.0, None, params)
    plain = grad_samples(gsm)
    gsm.zero_grad()
    for p in params:
        p.grad_sample = None
    training._forward_backward(gsm, loss, x[:, None], y, 1.0, 1, params)
    for a, b in zip(plain, grad_samples(gsm), strict=True):
        assert a.shape[0] == 4
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_per_sample_gradients_of_k_views_are_the_mean_of_the_views_gradients():
    net, gsm = wrapped_model()
    loss = criterion()
    x, y = batch(3, k=2)
    training._forward_backward(gsm, loss, x, y, 1.0, 2, list(gsm.parameters()))
    averaged = grad_samples(gsm)
    assert averaged[0].shape[0] == 3
    for i in range(3):
        reference = [torch.zeros_like(p) for p in net.parameters()]
        for k in range(2):  # one view at a time through the unwrapped copy: the gradient of its own loss
            net.zero_grad()
            training.per_sample_loss(net(x[i, k : k + 1]), y[i : i + 1], loss.pos_weight).sum().backward()
            reference = [r + p.grad / 2 for r, p in zip(reference, net.parameters(), strict=True)]
        for a, r in zip(averaged, reference, strict=True):
            torch.testing.assert_close(a[i], r, rtol=1e-7, atol=1e-10)


def test_an_empty_poisson_batch_of_views_stays_empty():
    _, gsm = wrapped_model()
    x, y = batch(2, k=3)
    training._forward_backward(gsm, criterion(), x[:0], y[:0], 1.0, 3, list(gsm.parameters()))
    assert all(g.shape == (0, *p.shape) for g, p in zip(grad_samples(gsm), gsm.parameters(), strict=True))


def test_multiplicity_with_ghost_clipping_is_refused(tiny_cache):
    settings = tiny_settings(augmentation={"multiplicity": 2})
    settings["privacy"]["grad_sample_mode"] = "ghost"
    with pytest.raises(ConfigError, match=r"training\.augmentation\.multiplicity"):
        training.train_model(*tiny_cache, settings, epsilon=4.0, seed=0, log=quiet)


# --- the accountant sees the same steps and q -------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        {"augmentation": AUGMENTATION},
        {"augmentation": {**AUGMENTATION, "multiplicity": 2}},
        {"ema": {"decay": 0.9}},
        {"fine_tune": {"last_blocks": 1}},  # from the pretrained checkpoint, most layers frozen
    ],
    ids=["augmentation", "multiplicity", "ema", "fine_tune"],
)
def test_options_keep_the_accountants_steps_and_sampling_rate(cache, calibration, baseline, pretrained, option):
    init_path = pretrained if "fine_tune" in option else None
    result = private_run(cache, calibration, init_path=init_path, **option)
    record = result.privacy
    assert (record.steps, record.sample_rate) == (baseline.steps, baseline.sample_rate)
    assert record.noise_multiplier == baseline.noise_multiplier
    assert record.epsilon_spent == pytest.approx(baseline.epsilon_spent)
    assert result.history["val_auroc"].notna().all()


# --- EMA --------------------------------------------------------------------------------------------------------


def test_the_kept_and_validated_weights_are_the_moving_average(cache, calibration, monkeypatch):
    # Physical batches of 8 in logical batches of 32: the average moves once per step taken, not per piece.
    decay, nets, after_steps = 0.5, [], []
    model_from_spec, make_optimizer = training.model_from_spec, training.make_optimizer

    def spy_model(spec):
        nets.append(model_from_spec(spec))
        return nets[-1]

    def spy_optimizer(parameters, spec):
        optimiser = make_optimizer(parameters, spec)
        after_steps.append(training._cpu_copy(nets[0].state_dict()))  # the initial weights
        optimiser.register_step_post_hook(lambda *_: after_steps.append(training._cpu_copy(nets[0].state_dict())))
        return optimiser

    monkeypatch.setattr(training, "model_from_spec", spy_model)
    monkeypatch.setattr(training, "make_optimizer", spy_optimizer)
    result = private_run(cache, calibration, ema={"decay": decay})

    assert len(after_steps) == 1 + result.privacy.steps == 3
    expected = after_steps[0]
    for weights in after_steps[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * weights[k] for k in expected}
    raw = after_steps[-1]
    assert result.state_dict.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(result.state_dict[k], expected[k], rtol=1e-5, atol=1e-7)
    assert not torch.allclose(result.state_dict["classifier.weight"], raw["classifier.weight"])

    # Validated: the history's validation loss and AUROC are the kept (averaged) weights'.
    val = load_splits(*cache, splits=("val",))[1]["val"]
    model = ResNet9(2, 1, 2, width=4, num_groups=2)
    model.load_state_dict(result.state_dict)
    logits = predict_logits(model, val, 8, torch.device("cpu"))
    history = result.history.iloc[0]
    pos_weight = training.positive_class_weights(val.labels)
    assert history["val_loss"] == pytest.approx(training.per_sample_loss(logits, val.labels, pos_weight).mean().item())
    assert history["val_auroc"] == pytest.approx(masked_macro_auroc(val.labels.numpy(), torch.sigmoid(logits).numpy()))


def test_a_resumed_run_with_ema_and_augmentation_equals_an_uninterrupted_one(tiny_cache, tmp_path):
    # The uninterrupted run leaves its state after epoch 1 in resume.pt; the second call resumes from it. Without
    # privacy (fast): the accountant's part of resuming is test_resume's.
    settings = tiny_settings(epochs=2, ema={"decay": 0.7}, augmentation={**AUGMENTATION, "multiplicity": 2})
    resume = tmp_path / "resume.pt"
    run = {"epsilon": math.inf, "seed": 3, "resume_path": resume}
    uninterrupted = training.train_model(*tiny_cache, settings, log=quiet, **run)
    assert torch.load(resume, weights_only=True)["ema"] is not None
    lines = []
    resumed = training.train_model(*tiny_cache, settings, log=lines.append, **run)
    assert any("resumed from" in line for line in lines)
    assert resumed.privacy == uninterrupted.privacy
    assert resumed.history.drop(columns="seconds").equals(uninterrupted.history.drop(columns="seconds"))
    for k, v in uninterrupted.state_dict.items():
        assert torch.equal(resumed.state_dict[k], v), k


# --- augmentation ------------------------------------------------------------------------------------------------


def test_views_differ_from_each_other_and_the_input_and_repeat_for_a_seed(cache):
    train = load_splits(*cache, splits=("train",))[1]["train"]
    image, labels = train[0]

    def views(seed, epoch=1):
        dataset = AugmentedViews(train, {**AUGMENTATION, "multiplicity": 3}, seed)
        dataset.set_epoch(epoch)
        return dataset[0]

    first, same_labels = views(seed=0)
    assert first.shape == (3, *image.shape) and first.dtype == image.dtype
    assert torch.equal(same_labels, labels)
    assert all(not torch.allclose(first[i], first[j]) for i in range(3) for j in range(i + 1, 3))
    assert all(not torch.allclose(view, image) for view in first)
    assert torch.equal(views(seed=0)[0], first)
    assert not torch.equal(views(seed=1)[0], first)
    assert not torch.equal(views(seed=0, epoch=2)[0], first)


class Same(torch.utils.data.Dataset):
    """The same image at every index."""

    def __init__(self, image, n=1):
        self.image, self.n = image, n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return self.image, torch.zeros(2)


def test_3d_volumes_are_augmented_too():
    volume = torch.rand(1, 8, 10, 12)
    views = AugmentedViews(Same(volume), {**AUGMENTATION, "multiplicity": 2}, seed=0)[0][0]
    assert views.shape == (2, 1, 8, 10, 12)
    assert not torch.allclose(views[0], volume) and not torch.allclose(views[0], views[1])


def test_a_flip_alone_mirrors_left_right():
    image = torch.arange(16.0).view(1, 4, 4)
    views = AugmentedViews(Same(image), {"flip": True, "multiplicity": 8}, seed=0)[0][0]
    assert all(torch.equal(v, image) or torch.equal(v, image.flip(-1)) for v in views)
    assert any(torch.equal(v, image.flip(-1)) for v in views)


def test_workers_draw_their_own_reproducible_views():
    dataset = AugmentedViews(Same(torch.rand(1, 8, 8), n=2), AUGMENTATION, seed=0)

    def draw(epoch):  # batches of one: worker 0 augments index 0, worker 1 index 1, the same image
        dataset.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2, worker_init_fn=training._init_worker)
        return [x for x, _ in loader]

    first = draw(epoch=1)
    assert not torch.equal(first[0], first[1])
    assert all(torch.equal(a, b) for a, b in zip(first, draw(epoch=1), strict=True))
    assert not torch.equal(first[0], draw(epoch=2)[0])


def test_validation_images_are_never_augmented(cache, monkeypatch):
    seen = []
    predict = training.predict_logits

    def spy_predict(net, dataset, *args, **kwargs):
        seen.append(dataset)
        return predict(net, dataset, *args, **kwargs)

    monkeypatch.setattr(training, "predict_logits", spy_predict)
    settings = tiny_settings(augmentation=AUGMENTATION)
    result = training.train_model(*cache, settings, epsilon=math.inf, seed=0, log=quiet)
    (val,) = seen
    assert not isinstance(val, AugmentedViews) and len(val) == 24
    model = ResNet9(2, 1, 2, width=4, num_groups=2)
    model.load_state_dict(result.state_dict)
    logits = predict(model, val, 8, torch.device("cpu"))
    loss = training.per_sample_loss(logits, val.labels, training.positive_class_weights(val.labels)).mean().item()
    assert result.history["val_loss"].iloc[0] == pytest.approx(loss)
    assert np.isfinite(result.history["train_loss"].iloc[0])
