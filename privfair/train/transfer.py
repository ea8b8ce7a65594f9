"""Starting a run from pretrained weights, and choosing which of them fine-tuning may change.

The reference study pretrains ResNet9 non-privately on a public dataset and fine-tunes it with DP-SGD on the private
one. An init is named in ``study.init``: ``scratch`` (fresh weights), a public dataset of the config (its model from
rule ``pretrain``) or ``file:<path>`` (any checkpoint: a privfair ``model.pt`` or a bare ``state_dict``).

The label head is transferred by label name: a private label the public model also predicts keeps its row of the
head, the others start from fresh weights, and the log says which. Every other layer must fit exactly; the error
names the first layer that does not. Files are loaded with ``weights_only=True`` (``privfair.train.checkpoint``).

Freezing is done before Opacus wraps the model: a frozen parameter has no per-sample gradient, is not clipped, gets
no noise and no update, and the budget is spent on the layers that learn.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from privfair.core.errors import CheckpointError, ConfigError
from privfair.train.checkpoint import load_state_file

SCRATCH = "scratch"
FILE_PREFIX = "file:"
# The network's last layer (privfair.train.models.ResNet9.classifier): one row per label.
HEAD = "classifier"


def init_label(init: str) -> str:
    """The init's name in paths and tables: ``scratch``, the public dataset's name, or ``file-<stem>``.

    Args:
        init: an entry of ``study.init``.
    """
    return f"file-{Path(init[len(FILE_PREFIX) :]).stem}" if init.startswith(FILE_PREFIX) else init


def init_file(init: str) -> str | None:
    """The checkpoint path of a ``file:<path>`` init; None for the others."""
    return init[len(FILE_PREFIX) :] if init.startswith(FILE_PREFIX) else None


def initialise(net: nn.Module, path, labels: list[str], log=print) -> dict:
    """Load pretrained weights into ``net``: every layer but the head exactly, the head row by label name.

    Args:
        net: the freshly built network of the run (its head has one row per entry of ``labels``).
        path: a privfair checkpoint (``state_dict`` and the ``model`` spec with its ``labels``) or a bare state dict,
            whose head is then taken to have no known labels (the whole head starts fresh).
        labels: the run's label names, in the order of the head's rows.
        log: called with one line on what was transferred.

    Returns:
        ``{"kept": [...], "fresh": [...], "dropped": [...]}``: labels whose head row was transferred, labels that
        start fresh, and the public model's labels the run does not predict.

    Raises:
        CheckpointError: the file is not a safe state file, or a layer is missing, extra or of another shape (named).
    """
    checkpoint = load_state_file(path, "cpu")
    state = checkpoint.get("state_dict", checkpoint)
    source_labels = list(checkpoint.get("model", {}).get("labels", []))
    own = net.state_dict()
    missing = [name for name in own if name not in state and not name.startswith(f"{HEAD}.")]
    extra = [name for name in state if name not in own]
    if missing or extra:
        what = f"lacks layer '{missing[0]}'" if missing else f"has layer '{extra[0]}', which the model lacks"
        raise CheckpointError(f"{path}: the checkpoint {what}: it is not a ResNet9 of this study's model settings")
    for name, tensor in own.items():
        if name.startswith(f"{HEAD}.") or tensor.shape == state[name].shape:
            continue
        raise CheckpointError(
            f"{path}: layer '{name}' has shape {tuple(state[name].shape)} in the checkpoint but {tuple(tensor.shape)} "
            f"in the model (training.model: width, num_groups, and the images' channels must match the pretraining)"
        )
    transferred = {name: state[name] for name in own if not name.startswith(f"{HEAD}.")}
    head = {name: own[name].clone() for name in own if name.startswith(f"{HEAD}.")}
    kept = [label for label in labels if label in source_labels]
    for name, rows in head.items():
        if name not in state or state[name].shape[1:] != rows.shape[1:]:
            raise CheckpointError(f"{path}: layer '{name}' does not fit the model's head")
        for label in kept:
            rows[labels.index(label)] = state[name][source_labels.index(label)]
    net.load_state_dict({**transferred, **head})
    summary = {
        "kept": kept,
        "fresh": [label for label in labels if label not in kept],
        "dropped": [label for label in source_labels if label not in labels],
    }
    log(
        f"initialised from {path}: head rows kept for {_names(summary['kept'])}; fresh for {_names(summary['fresh'])}; "
        f"pretrained labels not predicted here: {_names(summary['dropped'])}"
    )
    return summary


def _names(labels: list[str]) -> str:
    return ", ".join(labels) if labels else "none"


def trainable_blocks(net: nn.Module) -> list[nn.Module]:
    """The network's blocks in forward order, each a unit of fine-tuning: the feature blocks with weights, then the
    head."""
    blocks = [block for block in net.features if any(True for _ in block.parameters())]
    return [*blocks, getattr(net, HEAD)]


def freeze_for_fine_tuning(net: nn.Module, last_blocks: int | None, log=print) -> list[str]:
    """Freeze all but the head and the last ``last_blocks`` feature blocks (None: train every layer).

    Args:
        net: the network, before its optimiser is made and before Opacus wraps it.
        last_blocks: how many feature blocks before the head stay trainable; 0 trains the head alone.
        log: called with one line naming the frozen blocks.

    Returns:
        The names of the frozen parameters.

    Raises:
        ConfigError: ``last_blocks`` exceeds the number of feature blocks (named ``training.fine_tune``).
    """
    if last_blocks is None:
        return []
    blocks = trainable_blocks(net)
    if last_blocks > len(blocks) - 1:
        raise ConfigError(
            f"training.fine_tune.last_blocks: the model has {len(blocks) - 1} feature blocks, got {last_blocks}"
        )
    frozen_blocks = blocks[: len(blocks) - 1 - last_blocks]
    frozen_ids = {id(p) for block in frozen_blocks for p in block.parameters()}
    frozen = []
    for name, parameter in net.named_parameters():
        if id(parameter) in frozen_ids:
            parameter.requires_grad_(False)
            frozen.append(name)
    log(f"fine-tuning the head and the last {last_blocks} of {len(blocks) - 1} feature blocks; {len(frozen)} frozen")
    return frozen


def check_init_preprocessing(public: str, public_config: dict, name: str, dataset: dict) -> None:
    """A public dataset can initialise a study dataset only if both are preprocessed alike and train the same network.

    Raises:
        ConfigError: naming the first key that differs (``datasets.<name>.preprocess.<key>`` or ``training.model``).
    """
    keys = ("spatial_size", "pixdim", "hu_window", "histogram_equalize")
    for key in keys:
        theirs, ours = public_config["preprocess"].get(key), dataset["preprocess"].get(key)
        if theirs != ours:
            raise ConfigError(
                f"datasets.{name}.preprocess.{key} is {ours}, but datasets.{public}.preprocess.{key} (its init "
                f"'{public}') is {theirs}: a pretrained model only transfers to images preprocessed alike; set "
                f"datasets.{name}.init to leave '{public}' out"
            )
    if _model(public_config) != _model(dataset):
        raise ConfigError(
            f"datasets.{name}.training.model is {_model(dataset)}, but its init '{public}' trains "
            f"{_model(public_config)} (datasets.{public}.training.model): the networks must be the same"
        )


def _model(dataset: dict) -> dict:
    model = dataset["training"]["model"]
    return {"activation": "relu", **model}
