import pandas as pd
import torch

from privfair.core.step import run_step
from privfair.data.cache import load_splits
from privfair.train.predict import device_for_run, load_model, predict_probabilities, predictions_table


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    device = device_for_run()
    # From the config, not params: the batch size changes memory use, not the predictions.
    batch_size = snakemake.config["datasets"][snakemake.wildcards.dataset]["training"]["physical_batch_size"]
    model, checkpoint = load_model(snakemake.input.model, device)
    _, data = load_splits(snakemake.input.cache, snakemake.input.manifest, snakemake.input.split, ("val", "test"))
    tables = [
        predictions_table(
            images, checkpoint["model"]["labels"], predict_probabilities(model, images, batch_size, device)
        )
        for images in data.values()
    ]
    pd.concat(tables, ignore_index=True).to_parquet(snakemake.output[0], index=False)


run_step(snakemake, main)
