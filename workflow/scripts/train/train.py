import json
from pathlib import Path

import torch

from privfair.core.epsilon import parse_epsilon
from privfair.core.provenance import provenance
from privfair.core.step import run_step
from privfair.train.loop import save_checkpoint, train_model
from privfair.train.settings import EXECUTION_KEYS


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    w = snakemake.wildcards
    # Memory and speed settings come from the config, not params: editing them retrains nothing.
    execution = {k: v for k, v in snakemake.config["datasets"][w.dataset]["training"].items() if k in EXECUTION_KEYS}
    # Not a declared output: Snakemake keeps it when the job fails, so the next attempt resumes from it.
    resume = Path(snakemake.output.model).with_name("resume.pt")
    result = train_model(
        snakemake.input.cache,
        snakemake.input.manifest,
        snakemake.input.split,
        {**snakemake.params.training, **execution},
        epsilon=parse_epsilon(w.epsilon),
        seed=int(w.seed),
        resume_path=resume,
    )
    origin = provenance()
    save_checkpoint(snakemake.output.model, result, origin)
    result.history.to_csv(snakemake.output.history, index=False)
    record = {
        "dataset": w.dataset,
        "seed": int(w.seed),
        "best_epoch": result.best_epoch,
        **result.privacy.to_dict(),
        **origin,
    }
    with open(snakemake.output.privacy, "w") as f:
        json.dump(record, f, indent=2)
    resume.unlink(missing_ok=True)


run_step(snakemake, main)
