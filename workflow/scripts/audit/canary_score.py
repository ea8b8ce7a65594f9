import json
import math

import torch

from privfair.audit.canary import audit_summary, canary_scores, guess, read_inclusion
from privfair.core.io import atomic_output
from privfair.core.step import run_step
from privfair.train.predict import device_for_run, load_model
from privfair.train.privacy import read_record


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    # From the config, not params: the batch size changes memory use, not the scores.
    batch_size = snakemake.config["datasets"][snakemake.wildcards.dataset]["training"]["physical_batch_size"]
    device = device_for_run()
    model, _ = load_model(snakemake.input.model, device)
    scores = canary_scores(model, snakemake.input.manifest, snakemake.input.cache, batch_size, device)
    guesses = guess(scores, read_inclusion(snakemake.input.split, snakemake.input.manifest), snakemake.params.guesses)
    summary = audit_summary(guesses, read_record(snakemake.input.privacy), snakemake.params.confidence)
    # JSON has no infinity: as in the privacy record, "inf" (read back by read_record).
    text = json.dumps({k: "inf" if isinstance(v, float) and math.isinf(v) else v for k, v in summary.items()}, indent=2)
    print(text)
    with atomic_output(snakemake.output.guesses) as partial:
        guesses.to_parquet(partial, index=False)
    with atomic_output(snakemake.output.summary) as partial:
        partial.write_text(text)


run_step(snakemake, main)
