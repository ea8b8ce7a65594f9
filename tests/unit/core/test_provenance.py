import subprocess

import privfair
from privfair.core.provenance import git_commit, provenance


def test_commit_of_a_checkout_and_unknown_outside_one(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a").write_text("a")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "a"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "a").write_text("b")
    assert git_commit(tmp_path) == f"{head}-dirty"
    outside = tmp_path / "outside"
    outside.mkdir()
    subprocess.run(["rm", "-rf", str(tmp_path / ".git")], check=True)
    assert git_commit(outside) == "unknown"
    assert git_commit(tmp_path / "missing") == "unknown"


def test_provenance_names_the_package_version():
    assert provenance()["privfair_version"] == privfair.__version__
