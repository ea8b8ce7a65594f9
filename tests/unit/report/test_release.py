"""The release: what it collects and leaves out, and the identifier scan on every file type a release holds.

Each test plants a known id where a release could carry it (a table, a figure's PDF text or PNG metadata, a model's
pickled metadata, a file embedded in an HTML report) and checks that the scan finds it, named by kind and masked.
"""

from __future__ import annotations

import base64
import io
import json
import stat

import matplotlib
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from privfair.core import style
from privfair.report import release
from privfair.report.release import (
    Identifiers,
    ReleaseError,
    build_release,
    is_scannable,
    load_identifiers,
    mask,
    model_decision,
    scan_for_identifiers,
)

PATIENT, OTHER_PATIENT, STUDY, IMAGE = "P00017", "P00042", "P00017_S01", "IMG-7f3a9c"
LIGATURE = "fi00077"  # matplotlib draws "fi" as one glyph, which pypdf reports as a string of its own
KIND = "chest patient_id"


@pytest.fixture
def identifiers():
    return Identifiers.from_values(
        {
            KIND: [PATIENT, OTHER_PATIENT, "P00099", LIGATURE, "123456", "12345", "Q7", PATIENT],
            "chest study_id": [STUDY],
            "chest image_id": [IMAGE],
        }
    )


def kinds(findings) -> list[str]:
    return [finding.kind for finding in findings]


def test_short_and_numeric_ids_are_counted_as_unscannable_not_dropped(identifiers):
    assert not is_scannable("12345") and not is_scannable("Q7") and not is_scannable("---")
    assert is_scannable("123456") and is_scannable("P017")
    assert identifiers.scanned[KIND] == 5 and identifiers.skipped[KIND] == 2  # the duplicate counted once
    assert identifiers.n_skipped == 2
    assert f"{KIND}: 5 scanned for, 2 not scannable" in identifiers.summary_lines()
    assert PATIENT not in repr(identifiers)


def test_a_finding_shows_the_kind_and_a_masked_id_never_the_value(tmp_path, identifiers):
    pd.DataFrame({"patient_id": [PATIENT], "auroc": [0.7]}).to_csv(tmp_path / "table.csv", index=False)
    [finding] = scan_for_identifiers(tmp_path, identifiers)
    assert (finding.file, finding.kind, finding.shown) == ("table.csv", KIND, mask(PATIENT))
    assert str(finding) == "table.csv: chest patient_id P0… (6 characters)" and PATIENT not in str(finding)


def test_finds_ids_in_a_markdown_table_case_insensitively(tmp_path, identifiers):
    (tmp_path / "table.md").write_text(f"| study | AUROC |\n|---|---:|\n| {STUDY.lower()} | 0.71 |\n")
    # "_" separates tokens: the study id names its patient, and both are found.
    assert sorted(kinds(scan_for_identifiers(tmp_path, identifiers))) == [KIND, "chest study_id"]


def test_an_id_inside_another_token_or_a_number_is_not_flagged(tmp_path, identifiers):
    (tmp_path / "table.csv").write_text(
        f"name,value\nX{PATIENT},0.123456\n{PATIENT}1,1\n{IMAGE}b,3\nabc{OTHER_PATIENT},4\n"
    )
    assert scan_for_identifiers(tmp_path, identifiers) == []
    # An id between punctuation ("_" too) is whole: a file name, joined words, a quoted value, a number.
    (tmp_path / "table.csv").write_text(f'"{PATIENT}.png",{IMAGE}-left,"roc_{OTHER_PATIENT}",123456.0\n')
    assert sorted(f.shown for f in scan_for_identifiers(tmp_path, identifiers)) == sorted(
        map(mask, (PATIENT, IMAGE, OTHER_PATIENT, "123456"))
    )


def test_file_names_are_scanned_too(tmp_path, identifiers):
    (tmp_path / f"roc_{IMAGE}.csv").write_text("clean\n")
    assert kinds(scan_for_identifiers(tmp_path, identifiers)) == ["chest image_id"]


@pytest.mark.parametrize("fonttype", [42, 3])
def test_finds_ids_in_the_text_of_a_matplotlib_pdf(tmp_path, identifiers, fonttype):
    # Drawn as the workflow draws (the shared style, Type 42 fonts). pypdf's extraction glues the y label to the last
    # tick label ("0.800P00099 …") and its per-string report splits the "fi" ligature from its word: each id is whole
    # in one of the scan's three readings of the page.
    with matplotlib.rc_context({**style.STYLE, "pdf.fonttype": fonttype}):
        fig = Figure(figsize=style.PANEL_SIZE_IN)
        ax = fig.add_subplot()
        ax.plot([0, 1, 2], [0.6, 0.7, 0.8])
        # matplotlib 3.11 cannot write ε or ∞ in a Type 3 font (ValueError): the workflow's figures use Type 42.
        ax.set_xticks([0, 1, 2], ["ε = 1" if fonttype == 42 else "1", PATIENT, "∞" if fonttype == 42 else "inf"])
        ax.set_title(f"ROC of {OTHER_PATIENT}, scan {LIGATURE}")
        ax.set_ylabel("P00099 AUROC")
        style.save_figure(fig, tmp_path / "figure.png", tmp_path / "figure.pdf")
    findings = scan_for_identifiers(tmp_path, identifiers)
    assert {f.file for f in findings} == {"figure.pdf"}
    assert sorted(f.shown for f in findings) == sorted(map(mask, (PATIENT, OTHER_PATIENT, "P00099", LIGATURE)))


def test_a_clean_matplotlib_pdf_and_png_pass(tmp_path, identifiers):
    with matplotlib.rc_context(style.STYLE):
        fig = Figure(figsize=style.PANEL_SIZE_IN)
        fig.add_subplot().plot([1, 2], [3, 4], label="macro AUROC")
        style.save_figure(fig, tmp_path / "figure.png", tmp_path / "figure.pdf")
    assert scan_for_identifiers(tmp_path, identifiers) == []


def test_finds_ids_in_png_text_chunks(tmp_path, identifiers):
    for name, add in (
        ("text", lambda info: info.add_text("Comment", f"source {PATIENT}")),
        ("compressed", lambda info: info.add_text("Comment", f"source {OTHER_PATIENT}", zip=True)),
        ("international", lambda info: info.add_itxt("Description", f"source {IMAGE}", zip=True)),
    ):
        info = PngInfo()
        add(info)
        Image.new("L", (4, 4)).save(tmp_path / f"{name}.png", pnginfo=info)
    findings = scan_for_identifiers(tmp_path, identifiers)
    assert sorted((f.file, f.kind) for f in findings) == [
        ("compressed.png", KIND),
        ("international.png", "chest image_id"),
        ("text.png", KIND),
    ]


def test_finds_ids_in_a_checkpoints_pickled_metadata_not_in_its_tensors(tmp_path, identifiers):
    weights = {"conv.weight": torch.randn(4, 3)}
    torch.save({"state_dict": weights, "model": {"labels": ["effusion"]}}, tmp_path / "clean.pt")
    assert scan_for_identifiers(tmp_path, identifiers) == []
    torch.save({"state_dict": weights, "provenance": {"trained_on": [STUDY]}}, tmp_path / "model.pt")
    findings = scan_for_identifiers(tmp_path, identifiers)
    assert sorted((f.file, f.kind) for f in findings) == [("model.pt", KIND), ("model.pt", "chest study_id")]


def test_decodes_files_embedded_in_an_html_report(tmp_path, identifiers):
    # As Snakemake's report embeds its results: base64 data URIs, named by filename= or known by their mime type.
    table = base64.b64encode(f"id,score\n{PATIENT},0.5\n".encode()).decode()
    info = PngInfo()
    info.add_text("Title", IMAGE)
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, format="png", pnginfo=info)
    figure = base64.b64encode(buffer.getvalue()).decode()
    (tmp_path / "report.html").write_text(
        f'<a href="data:text/csv;charset=utf8;filename=scores.csv;base64,{table}">scores</a>'
        f'<img src="data:image/png;base64,{figure}">'
    )
    findings = scan_for_identifiers(tmp_path, identifiers)
    assert sorted((f.file, f.kind) for f in findings) == [
        ("report.html > data URI 2.png", "chest image_id"),
        ("report.html > scores.csv", KIND),
    ]


def test_a_file_the_scan_cannot_read_is_a_finding(tmp_path, identifiers):
    (tmp_path / "weights.bin").write_bytes(bytes(range(256)))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    findings = scan_for_identifiers(tmp_path, identifiers)
    assert sorted((f.file, f.kind) for f in findings) == [
        ("broken.pdf", "unscannable file"),
        ("weights.bin", "unscannable file"),
    ]


def test_identifiers_come_from_every_manifest_with_file_names_and_stems(tmp_path):
    path = tmp_path / "manifest.parquet"
    pd.DataFrame(
        {
            "image_id": ["IMG0001", "IMG0002"],
            "patient_id": ["7", "PT0009"],
            "study_id": ["ST0001", "ST0002"],
            "path": ["/data/scans/CT_0001.nii.gz", "/data/scans/CT_0002.nii.gz"],
        }
    ).to_parquet(path)
    identifiers = load_identifiers({"ct": path})
    assert {"ct_0001.nii.gz", "ct_0001", "img0002", "pt0009", "st0001"} <= set(identifiers.kinds)
    assert identifiers.skipped == {"ct patient_id": 1}
    assert "scans" not in identifiers.kinds and "data" not in identifiers.kinds


def record(epsilon, **fields) -> dict:
    return {"dataset": "chest", "seed": 1, "epsilon": epsilon, "private": epsilon != "inf", **fields}


def test_only_secure_dp_models_are_released():
    assert model_decision(record(4.0, noise_mode="secure"))[0]
    assert model_decision(record(4.0)) == (False, release.SEEDED_REASON)  # no field (an older record): seeded
    assert model_decision(record(4.0, noise_mode="seeded")) == (False, release.SEEDED_REASON)
    assert model_decision(record("inf", noise_mode=None)) == (False, release.NON_PRIVATE_REASON)
    assert not model_decision(record(4.0, noise_mode="other"))[0]


def make_results(root, table_text="dataset,auroc\nchest,0.71\n"):
    """A results folder with one table, one figure, one manifest and three runs (secure, seeded, non-private)."""
    (root / "tables").mkdir(parents=True)
    (root / "tables" / "privacy_utility.csv").write_text(table_text)
    (root / "figures").mkdir()
    Image.new("L", (4, 4)).save(root / "figures" / "roc.png")
    (root / "data" / "chest").mkdir(parents=True)
    manifest = root / "data" / "chest" / "manifest.parquet"
    pd.DataFrame(
        {"image_id": [STUDY], "patient_id": [PATIENT], "study_id": [STUDY], "path": [f"/x/{STUDY}.png"]}
    ).to_parquet(manifest)
    runs = []
    for epsilon, label, fields in (
        (4.0, "4", {"noise_mode": "secure"}),
        (8.0, "8", {}),
        ("inf", "inf", {"noise_mode": None}),
    ):
        run = root / "runs" / "chest" / f"eps-{label}" / "seed-1"
        run.mkdir(parents=True)
        torch.save({"state_dict": {"w": torch.zeros(2)}}, run / "model.pt")
        (run / "privacy.json").write_text(json.dumps(record(epsilon, **fields)))
        runs.append((run / "model.pt", run / "privacy.json"))
    files = [root / "tables" / "privacy_utility.csv", root / "figures" / "roc.png"]
    return files, runs, {"chest": manifest}


def test_the_release_holds_the_shared_files_and_secure_models_readable_by_all(tmp_path):
    root = tmp_path / "results"
    files, runs, manifests = make_results(root)
    folder = root / "release"
    plan = build_release(folder, files, runs, manifests, root=root)
    released = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert released == [
        "MANIFEST.md",
        "figures/roc.png",
        "models/chest/eps-4/seed-1/model.pt",
        "models/chest/eps-4/seed-1/privacy.json",
        "tables/privacy_utility.csv",
    ]
    assert plan.left_out == {
        "chest/eps-8/seed-1": release.SEEDED_REASON,
        "chest/eps-inf/seed-1": release.NON_PRIVATE_REASON,
    }
    for path in [folder, *folder.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path
    text = (folder / "MANIFEST.md").read_text()
    assert "| `models/chest/eps-4/seed-1/model.pt` |" in text and "| `tables/privacy_utility.csv` |" in text
    assert f"| `chest/eps-8/seed-1` | {release.SEEDED_REASON} |" in text
    assert f"| `chest/eps-inf/seed-1` | {release.NON_PRIVATE_REASON} |" in text
    assert "| chest patient_id | 1 | 0 |" in text
    assert not (root / ".partial-release").exists()


def test_a_finding_fails_the_release_and_deletes_it(tmp_path, capsys):
    root = tmp_path / "results"
    files, runs, manifests = make_results(root, table_text=f"patient,auroc\n{PATIENT},0.71\n")
    folder = root / "release"
    with pytest.raises(ReleaseError) as error:
        build_release(folder, files, runs, manifests, root=root)
    message = str(error.value)
    assert "tables/privacy_utility.csv: chest patient_id P0… (6 characters)" in message
    assert PATIENT not in message and PATIENT not in capsys.readouterr().out
    assert not folder.exists() and not (root / ".partial-release").exists()


def test_the_scan_runs_by_hand_on_a_folder(tmp_path, capsys):
    root = tmp_path / "results"
    _, _, manifests = make_results(root)
    manifest = str(manifests["chest"])
    assert release.main(["scan", str(root / "tables"), "--manifest", manifest]) == 0
    assert "no identifier found in 1 file(s)" in capsys.readouterr().out
    (root / "tables" / "report.html").write_text(f"<td>{STUDY}</td>")
    assert release.main(["scan", str(root / "tables"), "--manifest", manifest]) == 1
    err = capsys.readouterr().err
    assert (
        "report.html: chest study_id, chest image_id, chest image file name P0… (10 characters)" in err
        and STUDY not in err
    )


def test_the_scan_by_hand_takes_every_study_s_manifests_even_of_datasets_with_the_same_name(
    tmp_path, capsys, monkeypatch
):
    make_results(tmp_path / "results" / "first")
    _, _, second = make_results(tmp_path / "results" / "second")
    pd.DataFrame(
        {"image_id": ["I-0999"], "patient_id": [OTHER_PATIENT], "study_id": ["S-0999"], "path": ["/x/q.png"]}
    ).to_parquet(second["chest"])
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "notes.md").write_text(f"{PATIENT} and {OTHER_PATIENT}\n")
    monkeypatch.chdir(tmp_path)  # the default: results/*/data/*/manifest.parquet
    assert release.main(["scan", "shared"]) == 1
    err = capsys.readouterr().err
    assert "results/first/data/chest patient_id" in err and "results/second/data/chest patient_id" in err
