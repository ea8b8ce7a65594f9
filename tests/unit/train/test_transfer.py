"""Pretrained inits: the label head mapped by name, layers shape-checked by name, frozen layers left alone by DP-SGD."""

import math

import pytest
import torch

from privfair.core.errors import CheckpointError, ConfigError
from privfair.train import loop as training
from privfair.train.models import ResNet9
from privfair.train.transfer import freeze_for_fine_tuning, init_label, initialise, trainable_blocks


def quiet(_):
    pass


def save_pretrained(path, labels, width=4, seed=0):
    torch.manual_seed(seed)
    net = ResNet9(2, 1, len(labels), width=width, num_groups=2)
    spec = {"spatial_dims": 2, "in_channels": 1, "labels": list(labels), "width": width, "num_groups": 2}
    torch.save({"state_dict": net.state_dict(), "model": spec, "best_epoch": 1, "provenance": {}}, path)
    return net.state_dict()


def test_the_head_keeps_the_rows_of_shared_labels_and_the_rest_starts_fresh(tmp_path):
    public = save_pretrained(tmp_path / "public.pt", ["effusion", "nodule", "cardiomegaly"])
    torch.manual_seed(1)
    net = ResNet9(2, 1, 3, width=4, num_groups=2)
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    lines = []
    summary = initialise(net, tmp_path / "public.pt", ["cardiomegaly", "edema", "effusion"], lines.append)
    assert summary == {"kept": ["cardiomegaly", "effusion"], "fresh": ["edema"], "dropped": ["nodule"]}
    state = net.state_dict()
    for name in ("classifier.weight", "classifier.bias"):
        assert torch.equal(state[name][0], public[name][2])  # cardiomegaly: row 2 of the public head
        assert torch.equal(state[name][2], public[name][0])  # effusion: row 0
        assert torch.equal(state[name][1], fresh[name][1])  # edema: unknown to the public model
    assert all(torch.equal(state[k], public[k]) for k in state if not k.startswith("classifier."))
    assert "kept for cardiomegaly, effusion" in lines[0] and "fresh for edema" in lines[0] and "nodule" in lines[0]


def test_a_bare_state_dict_transfers_every_layer_but_the_head(tmp_path):
    public = save_pretrained(tmp_path / "full.pt", ["a", "b"])
    torch.save(public, tmp_path / "bare.pt")
    net = ResNet9(2, 1, 2, width=4, num_groups=2)
    assert initialise(net, tmp_path / "bare.pt", ["a", "b"], quiet)["fresh"] == ["a", "b"]
    assert torch.equal(net.state_dict()["features.0.0.conv.weight"], public["features.0.0.conv.weight"])


def test_a_layer_of_another_shape_is_named(tmp_path):
    save_pretrained(tmp_path / "wide.pt", ["a"], width=8)
    with pytest.raises(
        CheckpointError, match=r"wide\.pt: layer 'features\.0\.0\.conv\.weight' has shape \(8, 1, 3, 3\)"
    ):
        initialise(ResNet9(2, 1, 1, width=4, num_groups=2), tmp_path / "wide.pt", ["a"], quiet)


def test_a_checkpoint_that_could_run_code_is_refused(tmp_path):
    torch.save({"state_dict": {}, "hook": print}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt was refused"):
        initialise(ResNet9(2, 1, 1, width=4, num_groups=2), tmp_path / "evil.pt", ["a"], quiet)


def test_fine_tuning_scope_freezes_all_but_the_head_and_the_last_blocks():
    net = ResNet9(2, 1, 2, width=4, num_groups=2)
    assert len(trainable_blocks(net)) == 7  # 6 feature blocks and the head
    assert freeze_for_fine_tuning(net, None, quiet) == []
    frozen = freeze_for_fine_tuning(net, 2, quiet)
    trainable = [name for name, p in net.named_parameters() if p.requires_grad]
    assert all(name.startswith(("features.4.", "features.5.", "classifier.")) for name in trainable)
    assert frozen and all(
        name.startswith(("features.0.", "features.1.", "features.2.", "features.3.")) for name in frozen
    )
    with pytest.raises(ConfigError, match="training.fine_tune.last_blocks"):
        freeze_for_fine_tuning(ResNet9(2, 1, 2, width=4, num_groups=2), 7, quiet)


def test_frozen_layers_receive_neither_noise_nor_updates_in_private_fine_tuning(
    tiny_cache, training_settings, tmp_path
):
    public = save_pretrained(tmp_path / "public.pt", ["a", "b"])
    training_settings.update(epochs=1, fine_tune={"last_blocks": 1}, model={"width": 4, "num_groups": 2})
    result = training.train_model(
        *tiny_cache, training_settings, epsilon=1.0, seed=0, log=quiet, init_path=tmp_path / "public.pt"
    )
    state = result.state_dict
    frozen = [k for k in state if k.startswith(("features.0.", "features.1.", "features.2.", "features.3."))]
    assert frozen and all(torch.equal(state[k], public[k]) for k in frozen)
    # The trainable layers moved: at ε = 1 the noise alone would move them.
    assert not torch.equal(state["features.5.body.1.0.conv.weight"], public["features.5.body.1.0.conv.weight"])
    assert not torch.equal(state["classifier.weight"], public["classifier.weight"])


def test_init_names_in_paths():
    assert init_label("scratch") == "scratch" and init_label("mimic") == "mimic"
    assert init_label("file:/models/resnet9_mimic.pt") == "file-resnet9_mimic"


def test_pretraining_then_fine_tuning_starts_from_the_pretrained_model(tiny_cache, training_settings, tmp_path):
    training_settings.update(epochs=1, model={"width": 4, "num_groups": 2})
    pretrained = training.train_model(*tiny_cache, training_settings, epsilon=math.inf, seed=0, log=quiet)
    training.save_checkpoint(tmp_path / "pretrained.pt", pretrained)
    lines = []
    training.train_model(
        *tiny_cache, training_settings, epsilon=math.inf, seed=0, log=lines.append, init_path=tmp_path / "pretrained.pt"
    )
    assert any("head rows kept for a, b" in line for line in lines)
