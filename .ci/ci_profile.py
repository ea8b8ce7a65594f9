"""Write the CI profile: the real SLURM profile with the CI overrides merged in (nested mappings key by key).

Usage: python .ci/ci_profile.py slurm/config.yaml .ci/slurm_profile_overrides.yaml OUT_DIR
"""

import sys
from pathlib import Path

import yaml


def merged(base: dict, overrides: dict) -> dict:
    result = dict(base)
    for key, value in overrides.items():
        both_mappings = isinstance(value, dict) and isinstance(base.get(key), dict)
        result[key] = merged(base[key], value) if both_mappings else value
    return result


if __name__ == "__main__":
    profile, overrides, out = sys.argv[1:]
    config = merged(yaml.safe_load(Path(profile).read_text()), yaml.safe_load(Path(overrides).read_text()))
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
