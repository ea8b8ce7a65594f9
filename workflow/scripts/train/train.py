import torch

from privfair.core.epsilon import parse_epsilon
from privfair.core.provenance import provenance
from privfair.core.step import run_step
from privfair.train.job import train_and_write
from privfair.train.settings import execution_settings


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    w = snakemake.wildcards
    # Memory and speed settings come from the config, not params: editing them retrains nothing.
    execution = execution_settings(snakemake.config["datasets"][w.dataset]["training"])
    # resume.pt/resume.json beside the model are not declared outputs: Snakemake keeps them when the job fails, so the
    # next attempt resumes from them; train_and_write deletes them once the outputs are written.
    train_and_write(
        snakemake.input.cache,
        snakemake.input.manifest,
        snakemake.input.split,
        {**snakemake.params.training, **execution},
        epsilon=parse_epsilon(w.epsilon),
        seed=int(w.seed),
        outputs={name: snakemake.output[name] for name in ("model", "history", "privacy")},
        run={"dataset": w.dataset, "init": w.init, "seed": int(w.seed)},
        provenance=provenance(),
        # The budget's σ, calibrated once by rule calibrate_noise; the non-private run has none.
        calibration_path=snakemake.input.get("noise"),
        # The pretrained model (rule pretrain) or checkpoint file it starts from; a scratch run has none.
        init_path=snakemake.input.get("init"),
    )


run_step(snakemake, main)
