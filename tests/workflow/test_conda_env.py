"""The conda environment of every rule (`snakemake --sdm conda`) holds privfair itself, with pyproject.toml's pins.

Conda channels cannot be reached here, so the env file is checked as data, and its post-deploy script, which Snakemake
copies to <conda-prefix>/<hash>.post-deploy.sh and runs inside the new environment from its working directory, is run
the same way against a throw-away venv standing in for that environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from helpers.workflow import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from snakemake.sourcecache import LocalSourceFile

ENV_FILE = REPO / "envs" / "privfair.yaml"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def env_dependencies() -> tuple[list[str], list[str]]:
    """The env file's conda and pip dependencies."""
    dependencies = yaml.safe_load(ENV_FILE.read_text())["dependencies"]
    conda = [d for d in dependencies if isinstance(d, str)]
    pip = [spec for d in dependencies if isinstance(d, dict) for spec in d["pip"]]
    return conda, pip


def pins(specs) -> dict[str, str]:
    return {canonicalize_name(r.name): str(r.specifier) for r in map(Requirement, specs)}


def post_deploy_script() -> Path:
    # Snakemake's own rule for where the script lives: beside the env file, .yaml replaced by .post-deploy.sh.
    return Path(str(LocalSourceFile(str(ENV_FILE)).replace_suffix([".yaml", ".yml"], ".post-deploy.sh")))


def test_every_rule_with_a_script_uses_the_env_file():
    env = re.search(r'^ENV = "(.+)"$', (REPO / "workflow" / "rules" / "common.smk").read_text(), re.MULTILINE)[1]
    assert (REPO / "workflow" / "rules" / env).resolve() == ENV_FILE
    for rules in (REPO / "workflow" / "rules").glob("*.smk"):
        for rule in re.split(r"^rule ", rules.read_text(), flags=re.MULTILINE)[1:]:
            if "script:" in rule:
                assert re.search(r"conda:\n\s+ENV\n", rule), f"{rules.name}: rule {rule.split(':')[0]}"


def test_env_pins_match_pyproject():
    conda, pip = env_dependencies()
    project = PYPROJECT["project"]
    assert pins(pip) == pins(project["dependencies"] + project["optional-dependencies"]["slurm"])
    python = next(d for d in conda if d.startswith("python="))
    assert Requirement(f"python{project['requires-python']}").specifier.contains(python.split("=", 1)[1] + ".0")
    # The post-deploy script builds privfair without build isolation: the env brings pyproject's build requirement.
    assert pins(d for d in conda if d.startswith("setuptools")) == pins(PYPROJECT["build-system"]["requires"])


def test_env_installs_privfair_through_its_post_deploy_script():
    # Not under `pip:` in the env file: Snakemake copies that file to <conda-prefix>/<hash>.yaml, where a relative
    # path such as `-e ../..` would point at the working directory or the conda prefix, not at this checkout.
    _, pip = env_dependencies()
    assert not [spec for spec in pip if "privfair" in spec or spec.startswith(("-e", ".", "/"))]
    script = post_deploy_script()
    assert script.is_file()
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")  # Snakemake runs the script with its shebang's interpreter
    assert re.search(r"-m pip install .*--editable \"\$root\"", text)


def run_post_deploy(env: Path, cwd: Path, privfair_root: Path | None = None) -> subprocess.CompletedProcess:
    """Run the post-deploy script as Snakemake does: a copy beside the environment, from the working directory,
    inside the activated environment (CONDA_PREFIX and PATH)."""
    copy = env.parent / "0123abcd_.post-deploy.sh"
    shutil.copy(post_deploy_script(), copy)
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PRIVFAIR_ROOT")}
    environ.update(CONDA_PREFIX=str(env), PATH=f"{env / 'bin'}{os.pathsep}{environ.get('PATH', '')}")
    if privfair_root is not None:
        environ["PRIVFAIR_ROOT"] = str(privfair_root)
    return subprocess.run(
        ["/usr/bin/env", "bash", str(copy)], check=False, cwd=cwd, env=environ, capture_output=True, text=True
    )


def imported_privfair(env: Path, cwd: Path) -> subprocess.CompletedProcess:
    code = (
        "import privfair, importlib.metadata as m; print(privfair.__file__, m.distribution('privfair').locate_file(''))"
    )
    return subprocess.run([env / "bin" / "python", "-c", code], check=False, cwd=cwd, capture_output=True, text=True)


def test_post_deploy_script_installs_privfair_into_the_environment(tmp_path):
    env, elsewhere = tmp_path / "conda" / "env", tmp_path / "workdir"
    elsewhere.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, capture_output=True)
    # Python 3.11's venv comes with an older setuptools than the one the env file installs.
    setuptools = next(d for d in env_dependencies()[0] if d.startswith("setuptools"))
    pip = [env / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    fetched = subprocess.run(
        [*pip, "--retries", "0", "--timeout", "15", setuptools], check=False, capture_output=True, text=True
    )
    if fetched.returncode != 0:
        pytest.skip(f"pip cannot reach the package index for {setuptools}: {fetched.stderr.strip()[-300:]}")
    assert imported_privfair(env, elsewhere).returncode != 0  # the stand-in starts without privfair

    # `snakemake --sdm conda --directory elsewhere` without PRIVFAIR_ROOT: refused, naming the fix.
    refused = run_post_deploy(env, cwd=elsewhere)
    assert refused.returncode != 0 and "PRIVFAIR_ROOT" in refused.stderr
    assert imported_privfair(env, elsewhere).returncode != 0

    # From another working directory with PRIVFAIR_ROOT, and from the repository root without it.
    for cwd, root in ((elsewhere, REPO), (REPO, None)):
        subprocess.run([*pip[:3], "uninstall", "--yes", "--quiet", "privfair"], check=True, capture_output=True)
        assert imported_privfair(env, elsewhere).returncode != 0
        result = run_post_deploy(env, cwd=cwd, privfair_root=root)
        assert result.returncode == 0, result.stdout + result.stderr
        imported = imported_privfair(env, elsewhere)
        assert imported.returncode == 0, imported.stderr
        module, distribution = imported.stdout.split()
        assert Path(module) == REPO / "privfair" / "__init__.py"  # editable: jobs run the checkout's code
        assert Path(distribution).is_relative_to(env)  # installed into the environment, not found elsewhere
