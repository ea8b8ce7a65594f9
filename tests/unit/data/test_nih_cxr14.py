"""The NIH adapter on the real ChestX-ray14 label table (tests/data, see its README): the dataset's known facts."""

from __future__ import annotations

from helpers.exports import NIH_TABLE

from privfair.data.adapters.common import RowChecks
from privfair.data.adapters.nih_cxr14 import header_names, parse_data_entry


def test_bracketed_header_names_are_expanded():
    assert header_names(NIH_TABLE)[-4:] == [
        "OriginalImage_Width",
        "OriginalImage_Height",
        "OriginalImagePixelSpacing_x",
        "OriginalImagePixelSpacing_y",
    ]


def test_the_real_label_table_reproduces_the_published_counts():
    checks = RowChecks(None)
    manifest = parse_data_entry(NIH_TABLE, checks)
    assert len(manifest) == 112_120 and manifest["image_id"].is_unique
    assert manifest["patient_id"].nunique() == 30_805
    labels = manifest.filter(like="label_")
    assert labels.shape[1] == 14
    assert (labels.sum(axis=1) == 0).sum() == 60_361  # "No Finding"
    assert labels[["label_cardiomegaly", "label_effusion", "label_hernia"]].sum().tolist() == [2_776, 13_317, 227]
    assert manifest["sex"].value_counts().to_dict() == {"M": 63_340, "F": 48_780}
    assert manifest["age"].between(0, 120).all()  # the v2020 revision fixed the impossible ages
    assert checks.frame().empty
