"""Privacy accounting at hospital scale: noise calibration and per-epoch ε, accountant by accountant.

The reference study: N = 150,188 training images, logical batch 128, 150 epochs, δ = 6e-6, hence q = 1/1174 and
176,100 steps. For each target ε, each calibrator finds σ in a fresh subprocess (its time, and its peak resident set
from getrusage, so that peaks do not mix), and every accountant then gives its ε at that σ, each in a fresh subprocess
too: that time is the cost of one per-epoch ε at the last epoch (the longest history). ε above the target is marked !:
σ from that calibrator would report more than the budget by that accountant.

Calibrators: Opacus' PRV and RDP (``opacus.accountants.utils.get_noise_multiplier``), dp-accounting's PLD on its
default grid (1e-4) and on a 10× coarser one, and privfair's ``calibrate_noise`` with the prv accountant (PLD, then
PRV at the σ found). Accountants: Opacus PRV and RDP, PLD 1e-4, and PLD 1e-5, whose difference from PLD 1e-4 is the
latter's discretisation error.

Run: .venv/bin/python benchmarks/accounting.py
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
import warnings

N_TRAIN, BATCH, EPOCHS, DELTA = 150_188, 128, 150, 6e-6
SAMPLE_RATE = 1 / math.ceil(N_TRAIN / BATCH)
STEPS = int(EPOCHS / SAMPLE_RATE)
CALIBRATORS = ["opacus prv", "opacus rdp", "pld 1e-4", "pld 1e-3", "privfair (prv)"]
ACCOUNTANTS = ["opacus prv", "opacus rdp", "pld 1e-4", "pld 1e-5"]


def calibrate(name: str, epsilon: float) -> float:
    if name.startswith("opacus"):
        from opacus.accountants.utils import get_noise_multiplier

        return get_noise_multiplier(
            target_epsilon=epsilon,
            target_delta=DELTA,
            sample_rate=SAMPLE_RATE,
            steps=STEPS,
            accountant=name.split()[1],
        )
    if name.startswith("pld"):
        from privfair.train.accounting import pld_noise_multiplier

        return pld_noise_multiplier(epsilon, SAMPLE_RATE, STEPS, DELTA, discretisation=float(name.split()[1]))
    from privfair.train.calibration import calibrate_noise

    training = {"logical_batch_size": BATCH, "epochs": EPOCHS, "privacy": {"accountant": "prv", "delta": DELTA}}
    return calibrate_noise(N_TRAIN, epsilon, training, "benchmark")["noise_multiplier"]


def epsilon_of(name: str, sigma: float) -> float:
    if name.startswith("opacus"):
        from opacus.accountants import create_accountant

        accountant = create_accountant(mechanism=name.split()[1])
        accountant.history = [(sigma, SAMPLE_RATE, STEPS)]
        return accountant.get_epsilon(delta=DELTA)
    from privfair.train.accounting import pld_epsilon

    return pld_epsilon(sigma, SAMPLE_RATE, STEPS, DELTA, discretisation=float(name.split()[1]))


def child(task: str, name: str, value: float) -> None:
    """One measurement in this fresh process; prints seconds, the result and the peak RSS (MB) as JSON."""
    warnings.simplefilter("ignore")
    # The imports' memory, measured first, is common to all and printed apart.
    import dp_accounting  # noqa: F401
    import opacus  # noqa: F401

    import privfair.train.calibration  # noqa: F401

    imports_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = calibrate(name, value) if task == "calibrate" else epsilon_of(name, value)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"result": result, "seconds": seconds, "peak_mb": peak_mb, "imports_mb": imports_mb}))


def measure(task: str, name: str, value: float) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", task, name, repr(value)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 8.0])
    parser.add_argument("--child", nargs=3, metavar=("TASK", "NAME", "VALUE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, name, value = args.child
        return child(task, name, float(value))

    print(f"N = {N_TRAIN}, batch {BATCH}, {EPOCHS} epochs: q = 1/{round(1 / SAMPLE_RATE)}, {STEPS} steps, δ = {DELTA}")
    for target in args.epsilons:
        print(f"\ntarget ε = {target:g}")
        header = f"{'calibrator':<15} {'time s':>8} {'peak MB':>8} {'σ':>9} | " + " | ".join(
            f"{name:>26}" for name in ACCOUNTANTS
        )
        print(header + "\n" + "-" * len(header))
        for calibrator in CALIBRATORS:
            found = measure("calibrate", calibrator, target)
            cells = []
            for accountant in ACCOUNTANTS:
                spent = measure("epsilon", accountant, found["result"])
                mark = "!" if spent["result"] > target else " "
                cells.append(f"{spent['result']:8.4f}{mark} {spent['seconds']:5.2f} s {spent['peak_mb']:5.0f} MB")
            print(
                f"{calibrator:<15} {found['seconds']:8.1f} {found['peak_mb']:8.0f} {found['result']:9.5f} | "
                + " | ".join(f"{cell:>26}" for cell in cells)
            )
        print(
            f"(each accountant's cell: its ε at that σ, and the time and peak memory of that one ε; a fresh process's "
            f"imports take "
            f"{found['imports_mb']:.0f} MB of every peak)"
        )


if __name__ == "__main__":
    main()
