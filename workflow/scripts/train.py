import json

import torch

from privfair.config import parse_epsilon
from privfair.steps import run_step
from privfair.training import save_checkpoint, train_model


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    w = snakemake.wildcards
    result = train_model(snakemake.input.cache, snakemake.input.manifest, snakemake.input.split, snakemake.params.training,
                         epsilon=parse_epsilon(w.epsilon), seed=int(w.seed))
    save_checkpoint(snakemake.output.model, result)
    result.history.to_csv(snakemake.output.history, index=False)
    record = {"dataset": w.dataset, "seed": int(w.seed), "best_epoch": result.best_epoch, **result.privacy.to_dict()}
    with open(snakemake.output.privacy, "w") as f:
        json.dump(record, f, indent=2)


run_step(snakemake, main)
