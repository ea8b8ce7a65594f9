"""Training one model for one (dataset, ε, seed) grid point, privately (Opacus) or not, through one code path.

ε = inf trains without Opacus: the same model, data, optimiser, logical batch and epochs, but plain gradients.
A finite ε uses ``make_private`` with Poisson sampling, per-sample clipping and the σ of the run's calibration
(``privfair.train.calibration``: rule ``calibrate_noise``'s file, or calibrated in-process without one), which spends
the budget over all epochs; ``BatchMemoryManager`` splits each logical batch into physical ones.
The checkpoint kept is the epoch with the best validation macro AUROC: the test split plays no part here.
A run given a ``resume_path`` survives time limits and preemption: see ``privfair.train.resume``.

Two options for accurate DP models (De et al. 2022), neither changing the steps, q or σ: ``training.augmentation``
trains on K augmented views of each training sample (``privfair.train.augment``), their per-sample gradients
averaged before clipping (:func:`average_over_views`); ``training.ema`` validates and keeps a moving average of the
weights (``privfair.train.ema``).

A private run publishes no training loss: it is computed without clipping or noise, outside the accountant. Its
history has the validation loss instead. Its sampling rate q and step count are those of the sampler (the optimiser
steps actually taken), checked against the accountant's history before the record is made; the noise comes from the
configured noise mode (``privfair.train.privacy``). Each epoch's history row has Opacus' RDP ε so far
(``epsilon_rdp``: a valid upper bound in milliseconds, where PRV takes seconds); the record has the configured
accountant's ε and dp-accounting's PLD ε of the whole run, checked against each other
(``privfair.train.accounting``).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from opacus.utils.batch_memory_manager import BatchMemoryManager
from torch import nn
from torch.utils.data import DataLoader

from privfair.core.errors import ConfigError, ResumeError, TrainingError, TrainingInterrupted
from privfair.core.seeding import seed_everything
from privfair.core.stats import masked_macro_auroc
from privfair.data.cache import load_splits
from privfair.data.manifest import label_names
from privfair.train.accounting import check_epsilon, pld_epsilon, rdp_epsilon
from privfair.train.augment import AugmentedViews, check_augmentation, seed_worker, views_per_sample
from privfair.train.calibration import noise_plan
from privfair.train.ema import WeightEMA
from privfair.train.models import model_from_spec
from privfair.train.predict import device_for_run, predict_logits
from privfair.train.privacy import (
    PrivacyRecord,
    check_accounting,
    make_engine,
    noise_generators,
    noise_mode,
)
from privfair.train.resume import (
    ResumeFile,
    capture_rng,
    data_fingerprint,
    file_fingerprint,
    ignore_signals_in_worker,
    interrupt_on_signals,
    restore_rng,
)
from privfair.train.settings import model_settings
from privfair.train.transfer import freeze_for_fine_tuning, initialise


class WeightedBCE(nn.Module):
    """Multi-label BCE with positives up-weighted by the validation split's negative/positive ratio.

    A NaN target is an unknown (masked) label: it adds nothing to the loss, and a sample's loss is the mean over its
    known labels. ``reduction`` is an attribute because Opacus' ghost clipping switches it to "none" to get
    per-sample losses.
    """

    def __init__(self, pos_weight: torch.Tensor, reduction: str = "mean"):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)
        self.reduction = reduction

    def forward(self, logits, target):
        per_sample = per_sample_loss(logits, target, self.pos_weight)
        if self.reduction == "none":
            return per_sample
        return per_sample.sum() if self.reduction == "sum" else per_sample.mean()


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    """:class:`WeightedBCE` of each sample: the mean over its known labels of the weighted binary cross-entropy.

    Args:
        logits: network outputs (n, labels).
        target: 0/1 labels (n, labels), NaN where unknown.
        pos_weight: the positives' weight per label.

    Returns:
        The n losses.
    """
    known = ~torch.isnan(target)
    per_label = F.binary_cross_entropy_with_logits(
        logits, torch.where(known, target, 0.0), pos_weight=pos_weight, reduction="none"
    )
    return (per_label * known).sum(dim=1) / known.sum(dim=1).clamp(min=1)


def positive_class_weights(labels: torch.Tensor) -> torch.Tensor:
    """Negatives / positives per label, counting known (non-NaN) labels only."""
    positives = torch.nansum(labels, dim=0)
    known = (~torch.isnan(labels)).sum(dim=0)
    return (known - positives) / positives.clamp(min=1)


def make_optimizer(parameters, spec: dict) -> torch.optim.Optimizer:
    name = spec["name"]
    if not hasattr(torch.optim, name):
        raise ConfigError(f"training.optimizer.name: torch.optim has no optimiser '{name}'")
    return getattr(torch.optim, name)(parameters, lr=spec["lr"], weight_decay=spec.get("weight_decay", 0.0))


@dataclass
class TrainResult:
    state_dict: dict
    model_spec: dict
    history: pd.DataFrame
    privacy: PrivacyRecord
    best_epoch: int


def _plain_batches(loader, physical_batch_size):
    """Logical batches split into physical ones; gradients accumulate until the last piece of a logical batch."""
    for x, y in loader:
        pieces = list(zip(x.split(physical_batch_size), y.split(physical_batch_size)))
        for i, (xp, yp) in enumerate(pieces):
            yield xp, yp, len(xp) / len(x), i == len(pieces) - 1


def _init_worker(worker_id: int) -> None:
    """The training loader's ``worker_init_fn``: workers ignore the job's signals and draw their own augmentations."""
    ignore_signals_in_worker(worker_id)
    seed_worker(worker_id)


@contextmanager
def physical_batches(loader, physical_batch_size: int, optimizer, private: bool):
    """Yield ``(x, y, loss_weight, step)`` pieces of at most ``physical_batch_size`` images.

    Privately, Opacus' ``BatchMemoryManager`` splits the batches and the DP optimiser itself skips the step until a
    logical batch is complete; otherwise gradients of the pieces are weighted and accumulated here.
    """
    if private:
        with BatchMemoryManager(
            data_loader=loader, max_physical_batch_size=physical_batch_size, optimizer=optimizer
        ) as pieces:
            yield ((x, y, 1.0, True) for x, y in pieces)
    else:
        yield _plain_batches(loader, physical_batch_size)


def _make_private(net, optimizer, criterion, loader, plan: dict, dp: dict, noise_generator, log):
    """Wrap the training set-up with Opacus at the calibrated σ (``plan``, :func:`noise_plan`).

    ``noise_generator`` (secure mode) draws the noise, as the sum of 4 Gaussians (``DPOptimizer.secure_mode``, Opacus'
    floating-point-attack mitigation); None leaves the noise to torch's global RNG.
    """
    engine = make_engine(dp["accountant"])
    wrapped = engine.make_private(
        module=net,
        optimizer=optimizer,
        criterion=criterion,
        data_loader=loader,
        noise_multiplier=plan["noise_multiplier"],
        max_grad_norm=dp["max_grad_norm"],
        poisson_sampling=True,
        grad_sample_mode=dp["grad_sample_mode"],
        noise_generator=noise_generator,
    )
    # Ghost clipping also wraps the loss (two backward passes); the other modes leave it alone.
    model, optimizer, *rest = wrapped
    criterion, loader = rest if len(rest) == 2 else (criterion, rest[0])
    optimizer.secure_mode = noise_generator is not None
    # Opacus accounts each step at q = 1/len(loader), but its sampler draws at loader.sample_rate = 1/k for k
    # logical batches, and int(1 / (1/k)) batches an epoch, which is k - 1 for some k (93, 99, ...). The accountant
    # must count the q the sampler used.
    optimizer.attach_step_hook(engine.accountant.get_optimizer_hook_fn(sample_rate=loader.sample_rate))
    log(
        f"private training: target ε={plan['epsilon']}, δ={plan['delta']:.3g}, σ={optimizer.noise_multiplier:.4f}, "
        f"q={loader.sample_rate:.4f}, accountant={dp['accountant']}, noise={dp['noise']}"
    )
    return engine, model, optimizer, criterion, loader


def average_over_views(params, views: int) -> None:
    """Replace each parameter's per-sample gradients of B·K views by their means over each sample's K views.

    The batch was ``(B, K, ...)`` flattened to ``(B·K, ...)``, so rows ``i·K … i·K + K − 1`` are sample i's views.
    Opacus (hooks and functorch modes alike) scales a mean loss' backprops by the batch length it saw (B·K), so each
    row is the gradient of one view's own loss; the mean over K is then the gradient of the sample's loss averaged
    over its views, which the DP optimiser clips, sums and scales by its expected batch size of samples, as without
    views (De et al. 2022's augmentation multiplicity).

    Args:
        params: the DP optimiser's trainable parameters (``optimizer.params``); frozen ones have no per-sample
            gradients and are skipped.
        views: K.

    Raises:
        TrainingError: a parameter holds per-sample gradients of several backward passes (a list), which would be
            averaged twice.
    """
    for p in params:
        grad_sample = getattr(p, "grad_sample", None)
        if grad_sample is None:
            continue
        if not isinstance(grad_sample, torch.Tensor):
            raise TrainingError("per-sample gradients of several backward passes; cannot average over views")
        p.grad_sample = grad_sample.view(len(grad_sample) // views, views, *grad_sample.shape[1:]).mean(dim=1)


def _forward_backward(model, criterion, x, y, weight: float, views: int | None, params=None):
    """Forward and backward one physical batch; returns the loss and the number of images it is the mean over.

    With ``views`` (K, ``training.augmentation``) ``x`` is ``(B, K, C, *spatial)``: the B·K views go through the
    network as one batch, each with its sample's labels, and the loss is their mean. For a private run (``params``,
    the DP optimiser's) each sample's per-sample gradients are then averaged over its K views
    (:func:`average_over_views`), before the optimiser clips them. An empty Poisson batch (B = 0) stays empty.
    """
    if views is not None:
        x, y = x.flatten(0, 1), y.repeat_interleave(views, dim=0)
    loss = criterion(model(x), y)
    (loss * weight if weight != 1.0 else loss).backward()
    if params is not None and views is not None and views > 1:
        average_over_views(params, views)
    return loss, len(x)


def _train_epoch(
    model, optimizer, criterion, loader, physical_batch_size: int, private: bool, device, views=None, ema=None
):
    """One pass over the training data.

    ``views``: K augmented views per sample (:func:`_forward_backward`), None for plain batches. ``ema``: a
    :class:`privfair.train.ema.WeightEMA` updated after every optimiser step taken.

    Returns ``(loss, steps)``: the mean training loss (None for a private run, whose training loss is not published)
    and the optimiser steps taken, one per logical batch the sampler drew, empty Poisson batches included.
    """
    steps, loss_sum, n_seen = 0, 0.0, 0

    def count_step(*_):
        nonlocal steps
        steps += 1
        if ema is not None:
            ema.update()

    # The DP optimiser calls its wrapped optimiser only at the end of a logical batch.
    counter = (optimizer.original_optimizer if private else optimizer).register_step_post_hook(count_step)
    params = optimizer.params if private else None
    try:
        with physical_batches(loader, physical_batch_size, optimizer, private) as pieces, warnings.catch_warnings():
            # Opacus' hooks on the first layer fire although the images need no gradient; torch warns every step.
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            for x, y, weight, step in pieces:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                loss, n = _forward_backward(model, criterion, x, y, weight, views, params)
                if step:
                    optimizer.step()
                    optimizer.zero_grad()
                if not private:  # non-private batches are never empty
                    loss_sum += loss.item() * n
                    n_seen += n
    finally:
        counter.remove()
    return (None if private else loss_sum / n_seen), steps


def train_model(
    cache_path,
    manifest_path,
    split_path,
    settings: dict,
    epsilon: float,
    seed: int,
    log=print,
    resume_path=None,
    calibration_path=None,
    init_path=None,
) -> TrainResult:
    """Train one model. ``settings`` is the dataset's ``training`` config; ``epsilon`` may be ``math.inf``.

    With ``resume_path`` the run saves its state there (see ``privfair.train.resume``) and continues from it if present.

    Args:
        cache_path: the preprocessed image array (see :func:`privfair.data.cache.load_splits`).
        manifest_path: the cache's manifest.
        split_path: the patient split; only its train and validation images are read.
        settings: the dataset's ``training`` config, execution settings (``physical_batch_size``, ...) included.
        epsilon: the privacy budget to spend over all epochs; ``math.inf`` trains without Opacus.
        seed: seeds Python, NumPy and torch, and the data loader's shuffling.
        log: called with one line of progress at a time.
        resume_path: where to save the state every ``checkpoint_every_epochs`` epochs; None: no resuming.
        calibration_path: the budget's ``noise.json`` (rule ``calibrate_noise``) whose σ a private run trains with;
            None calibrates in this process, by the same function.
        init_path: a pretrained checkpoint to start from (``privfair.train.transfer.initialise``), fine-tuning the
            layers ``settings["fine_tune"]`` leaves trainable; None starts from fresh weights and trains every layer.

    Returns:
        A :class:`TrainResult`: the weights of the best-validation epoch, the model spec, one history row per epoch
        (``epoch, val_loss, val_auroc, epsilon_rdp, seconds``, and ``train_loss`` after ``epoch`` for a
        non-private run only; ``epsilon_rdp`` is Opacus' RDP ε after the epoch, an upper bound, ``inf`` without
        privacy), the :class:`PrivacyRecord` (``epsilon_spent`` by the configured accountant, ``epsilon_pld`` by
        dp-accounting) and the best epoch.

    Raises:
        ConfigError: an unknown optimiser, accountant (``gdp`` included) or noise mode, δ not in (0, 1/N_train), or
            (without ``calibration_path``) a budget the accountant cannot reach.
        ManifestError: images of the split are missing from the cache.
        TrainingError: the model diverged (non-finite validation outputs), the calibration file is another run's,
            the accountant's history does not match what the sampler did, or Opacus' ε is below dp-accounting's PLD
            ε by more than ``privfair.train.accounting.EPSILON_TOLERANCE``.
        ResumeError: the state at ``resume_path`` belongs to another run, is not a safe state file, or cannot be
            restored.
        TrainingInterrupted: SIGTERM, SIGUSR1 or SIGINT arrived; with ``resume_path``, the state after the last
            complete epoch (if any) is saved first.
    """
    generator = seed_everything(seed)
    device = device_for_run()
    manifest, data = load_splits(cache_path, manifest_path, split_path, splits=("train", "val"))
    train, val = data["train"], data["val"]
    image = train[0][0]
    model_spec = dict(
        spatial_dims=image.ndim - 1, in_channels=image.shape[0], labels=label_names(manifest), **settings["model"]
    )
    net = model_from_spec(model_spec)
    if init_path is not None:
        initialise(net, init_path, model_spec["labels"], log)
        freeze_for_fine_tuning(net, settings.get("fine_tune", {}).get("last_blocks"), log)
    net = net.to(device)
    # Frozen layers are not the optimiser's: Opacus clips, noises and updates only what it is given.
    trainable = [p for p in net.parameters() if p.requires_grad]
    model, optimizer = net, make_optimizer(trainable, settings["optimizer"])
    # Class weights from the training labels would be a statistic of private data outside the accounting.
    loss = WeightedBCE(positive_class_weights(val.labels)).to(device)
    epochs, dp, private = settings["epochs"], settings.get("privacy", {}), math.isfinite(epsilon)
    noise = noise_mode(dp) if private else None
    noise_generator = None
    if noise == "secure":  # the Poisson sampler draws from the data loader's generator
        generator, noise_generator = noise_generators(device)
    # Augmentation (training split only) yields K views of each sample; q and the steps stay those of the samples.
    check_augmentation(settings)
    augmented = "augmentation" in settings
    loader = DataLoader(
        AugmentedViews(train, settings["augmentation"], seed) if augmented else train,
        batch_size=settings["logical_batch_size"],
        shuffle=True,
        generator=generator,
        num_workers=settings.get("num_workers", 0),
        worker_init_fn=_init_worker,
    )
    criterion = loss
    if private:
        plan = noise_plan(calibration_path, len(train), epsilon, settings)
        delta = plan["delta"]
        engine, model, optimizer, criterion, loader = _make_private(
            net, optimizer, loss, loader, plan, dp, noise_generator, log
        )
    else:
        engine, delta = None, None
        log("non-private training (ε = inf): no clipping, no noise")
    # The raw network's weights, averaged after each step taken; validated and kept instead of the weights.
    ema = WeightEMA(net, settings["ema"]["decay"]) if "ema" in settings else None

    resume = resume_path and ResumeFile(
        resume_path,
        {
            "settings": model_settings(settings),
            "epsilon": epsilon,
            "seed": seed,
            "data": data_fingerprint(cache_path, manifest_path, split_path),
            "init": init_path and file_fingerprint(init_path),
        },
    )
    snapshot = resume and resume.load()
    progress = _Progress()
    if snapshot:
        _restore(snapshot, net, optimizer, engine, loss, (generator, noise_generator), progress, ema)
        log(f"resumed from {resume.path} after epoch {snapshot['epoch']}")

    checkpoint_every = settings.get("checkpoint_every_epochs", 1)
    try:
        with interrupt_on_signals() as received:
            for epoch in range(progress.epoch + 1, epochs + 1):
                _run_epoch(
                    epoch,
                    model,
                    net,
                    optimizer,
                    criterion,
                    loader,
                    val,
                    settings,
                    private,
                    engine,
                    delta,
                    device,
                    loss.pos_weight,
                    progress,
                    log,
                    ema=ema,
                )
                if received:  # the handler's exception was swallowed (e.g. raised in a data loader's __del__)
                    raise TrainingInterrupted("epoch not counted")
                if resume:
                    snapshot = _snapshot(net, optimizer, engine, loss, (generator, noise_generator), progress, ema)
                    if epoch % checkpoint_every == 0 and epoch < epochs:
                        resume.save(snapshot)
    except Exception:
        if not received:
            raise
        signal_name = received[0].name
        if not (resume and snapshot):
            raise TrainingInterrupted(f"received {signal_name} before the first epoch ended; nothing saved") from None
        resume.save(snapshot)
        raise TrainingInterrupted(
            f"received {signal_name} during epoch {snapshot['epoch'] + 1}/{epochs}: state after "
            f"epoch {snapshot['epoch']} saved to {resume.path}; rerun to resume"
        ) from None

    history = progress.history
    # The Poisson sampler's q; without Opacus, the share of the data in one logical batch as the loader makes them.
    sample_rate = loader.sample_rate if private else 1 / len(loader)
    spent, independent = math.inf, None
    if private:
        check_accounting(engine.accountant.history, optimizer.noise_multiplier, sample_rate, progress.steps)
        spent = engine.get_epsilon(delta)
        if progress.steps != plan["steps"] or spent > epsilon:
            raise TrainingError(
                f"the run took {progress.steps} steps and spent ε = {spent:.4f}, but was calibrated for "
                f"{plan['steps']} steps and ε = {epsilon:g}: the privacy record would not hold"
            )
        independent = pld_epsilon(optimizer.noise_multiplier, sample_rate, progress.steps, delta)
        log(f"ε spent {spent:.4f} ({dp['accountant']}); dp-accounting PLD ε {independent:.4f}")
        check_epsilon(spent, independent, dp["accountant"])
    record = PrivacyRecord(
        private=private,
        noise_mode=noise,
        epsilon=epsilon,
        epsilon_spent=spent,
        epsilon_pld=independent,
        delta=delta,
        noise_multiplier=optimizer.noise_multiplier if private else 0.0,
        sample_rate=sample_rate,
        steps=progress.steps,
        epochs=epochs,
        accountant=dp["accountant"] if private else None,
        max_grad_norm=dp["max_grad_norm"] if private else None,
        n_train=len(train),
        n_train_patients=train.rows["patient_id"].nunique(),
        max_images_per_patient=int(train.rows["patient_id"].value_counts().max()),
    )
    return TrainResult(progress.best_state, model_spec, pd.DataFrame(history), record, progress.best_epoch)


def _eta(history: list[dict], epochs: int) -> str:
    """This epoch's time and the time left, from the mean time of the epochs so far (resumed ones included)."""
    seconds = [entry["seconds"] for entry in history]
    left = (epochs - history[-1]["epoch"]) * sum(seconds) / len(seconds)
    return f"{_duration(seconds[-1])} this epoch, about {_duration(left)} to go"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


@dataclass
class _Progress:
    """Where a run stands after its last complete epoch."""

    epoch: int = 0
    steps: int = 0  # optimiser steps taken so far
    history: list = field(default_factory=list)
    best_state: dict | None = None
    best_auroc: float = -math.inf
    best_epoch: int | None = None


def _run_epoch(
    epoch,
    model,
    net,
    optimizer,
    criterion,
    loader,
    val,
    settings,
    private,
    engine,
    delta,
    device,
    pos_weight,
    progress: _Progress,
    log,
    ema: WeightEMA | None = None,
) -> None:
    """Train one epoch, validate, and record it in ``progress``.

    With ``ema`` the averaged weights are validated and kept as the best state (post-processing: no privacy cost).
    """
    start = time.perf_counter()
    if isinstance(loader.dataset, AugmentedViews):
        loader.dataset.set_epoch(epoch)  # before the loader's workers copy it
    train_loss, steps = _train_epoch(
        model,
        optimizer,
        criterion,
        loader,
        settings["physical_batch_size"],
        private,
        device,
        views=views_per_sample(settings),
        ema=ema,
    )
    with ema.applied() if ema else nullcontext():
        logits = predict_logits(net, val, settings["physical_batch_size"], device)
    scores = torch.sigmoid(logits).numpy()
    if not np.isfinite(scores).all():
        raise TrainingError(
            f"epoch {epoch}: the model diverged (non-finite outputs); lower "
            f"training.optimizer.lr (now {settings['optimizer']['lr']})"
        )
    val_loss = per_sample_loss(logits, val.labels, pos_weight.cpu()).mean().item()
    val_auroc = masked_macro_auroc(val.labels.numpy(), scores)
    # RDP on the accountant's own history: a valid upper bound in milliseconds; PRV would take seconds an epoch.
    spent = rdp_epsilon(engine.accountant.history, delta) if private else math.inf
    losses = {"val_loss": val_loss} if private else {"train_loss": train_loss, "val_loss": val_loss}
    progress.history.append(
        {
            "epoch": epoch,
            **losses,
            "val_auroc": val_auroc,
            "epsilon_rdp": spent,
            "seconds": time.perf_counter() - start,
        }
    )
    shown = ", ".join(f"{name.replace('_', ' ')} {value:.4f}" for name, value in losses.items())
    bound = f", ε ≤ {spent:.3f} (RDP)" if private else ""
    log(
        f"epoch {epoch}/{settings['epochs']}: {shown}, val macro AUROC {val_auroc:.4f}{bound}; "
        f"{_eta(progress.history, settings['epochs'])}"
    )
    if val_auroc > progress.best_auroc:  # validation only: the test split never informs a choice
        progress.best_auroc, progress.best_epoch = val_auroc, epoch
        progress.best_state = ema.state_dict() if ema else _cpu_copy(net.state_dict())
    progress.epoch = epoch
    progress.steps += steps


def _cpu_copy(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _snapshot(net, optimizer, engine, loss: WeightedBCE, generators, progress: _Progress, ema=None) -> dict:
    """Everything the next epoch depends on, copied so that later training does not change it.

    Tensors and plain containers only, so that ``resume.pt`` loads with ``weights_only=True``. ``generators`` is
    ``(loader generator, noise generator or None)``; ``ema`` the run's :class:`WeightEMA` or None. Augmentation
    needs no state: it is reseeded from the run's seed each epoch.
    """
    return {
        "epoch": progress.epoch,
        "model": _cpu_copy(net.state_dict()),
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "accountant": engine.accountant.state_dict() if engine else None,
        "noise_multiplier": optimizer.noise_multiplier if engine else 0.0,
        # The loss must be rebuilt from the same source (validation labels) on resume; stored to check that.
        "pos_weight": loss.pos_weight.detach().cpu().clone(),
        "rng": capture_rng(*generators),
        "progress": copy.deepcopy(vars(progress)),
        "ema": ema.state_dict() if ema else None,
    }


def _restore(
    snapshot: dict, net, optimizer, engine, loss: WeightedBCE, generators, progress: _Progress, ema=None
) -> None:
    noise = optimizer.noise_multiplier if engine else 0.0
    if snapshot["noise_multiplier"] != noise:
        raise ResumeError(f"σ recalibrated to {noise} but the saved run used {snapshot['noise_multiplier']}")
    if not torch.equal(snapshot["pos_weight"], loss.pos_weight.cpu()):
        raise ResumeError("the loss' class weights differ from the saved run's (they come from the validation labels)")
    net.load_state_dict(snapshot["model"])
    optimizer.load_state_dict(snapshot["optimizer"])
    if engine:
        engine.accountant.load_state_dict(snapshot["accountant"])
    if ema:
        if snapshot.get("ema") is None:
            raise ResumeError("the saved run kept no moving average of the weights (training.ema)")
        ema.load_state_dict(snapshot["ema"])
    restore_rng(snapshot["rng"], *generators)  # last: setting up the run above may draw random numbers
    vars(progress).update(copy.deepcopy(snapshot["progress"]))


def save_checkpoint(path, result: TrainResult, provenance: dict | None = None) -> None:
    """Save the trained model for :func:`privfair.train.predict.load_model`.

    The checkpoint is a dict: ``state_dict`` (the best-validation weights), ``model`` (the spec to rebuild the
    network: ``spatial_dims, in_channels, labels`` and the ``model`` config), ``best_epoch`` and ``provenance``.

    Args:
        path: the checkpoint file to write (``torch.save``, directly to ``path``).
        result: the run's :class:`TrainResult`.
        provenance: the code that trained it (:func:`privfair.core.provenance.provenance`); None saves ``{}``.
    """
    torch.save(
        {
            "state_dict": result.state_dict,
            "model": result.model_spec,
            "best_epoch": result.best_epoch,
            "provenance": provenance or {},
        },
        path,
    )
