"""Write the preemption check's config: the tiny scenario's radiograph runs at ε=4, long enough to interrupt.

Usage: python .ci/preempt_config.py tests/scenario/config.yaml OUT.yaml
"""

import sys
from pathlib import Path

import yaml

scenario, out = sys.argv[1:]
config = yaml.safe_load(Path(scenario).read_text())
# The scenario's study (its folder, so its preprocessed data are reused), with one run.
config["study"].update(datasets=["synth_cxr"], epsilons=[4], seeds=[1], init=["scratch"])
config["datasets"]["synth_cxr"]["training"].update(epochs=6, checkpoint_every_epochs=1)
Path(out).write_text(yaml.safe_dump(config))
