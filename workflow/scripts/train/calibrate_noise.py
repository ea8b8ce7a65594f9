import json

import pandas as pd

from privfair.core.epsilon import parse_epsilon
from privfair.core.io import atomic_output
from privfair.core.step import run_step
from privfair.train.calibration import calibrate_noise


def main(snakemake):
    split = pd.read_parquet(snakemake.input[0], columns=["split"])
    n_train = int((split["split"] == "train").sum())
    key = f"datasets.{snakemake.wildcards.dataset}"
    plan = calibrate_noise(n_train, parse_epsilon(snakemake.wildcards.epsilon), snakemake.params.calibration, key)
    print(json.dumps(plan, indent=2))
    with atomic_output(snakemake.output[0]) as path:
        path.write_text(json.dumps(plan, indent=2))


run_step(snakemake, main)
