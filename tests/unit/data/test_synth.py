"""Behaviour of the synthetic CXR / CT generators (privfair.data.synth)."""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from privfair.data.synth import ct as ct_module
from privfair.data.synth import cxr as cxr_module
from privfair.data.synth import generate_synth_ct, generate_synth_cxr
from privfair.data.synth._common import AGE_BETA

FINDINGS = ["cardiomegaly", "pleural_effusion", "pneumonic_infiltrate", "atelectasis", "nodule"]
CXR_COLUMNS = ["PatientID", "StudyID", "ImageFile", "PatientAge", "PatientSex", "ViewPosition", *FINDINGS]
CT_COLUMNS = ["PatientID", "StudyID", "VolumeFile", "PatientAge", "PatientSex", "lesion"]
EVERYONE = {"attribute": "age", "group": [0, 200]}


def _images(root, meta) -> np.ndarray:
    return np.stack([np.asarray(Image.open(root / f), dtype=np.float64) for f in meta["ImageFile"]])


def _volumes(root, meta) -> np.ndarray:
    return np.stack([np.asarray(nib.load(root / f).dataobj, dtype=np.float64) for f in meta["VolumeFile"]])


def _box(size, x, y):
    """Pixel slices of the image-coordinate box x=[x0, x1], y=[y0, y1] (coordinates in [-1, 1])."""
    px = [int((v + 1) / 2 * size) for v in (*x, *y)]
    return slice(px[2], px[3]), slice(px[0], px[1])


# ----------------------------------------------------------------------------- CXR


@pytest.fixture(scope="module")
def cxr(tmp_path_factory):
    root = tmp_path_factory.mktemp("cxr")
    return root, generate_synth_cxr(root, n_patients=60, seed=3)


@pytest.fixture(scope="module")
def cxr_labels(tmp_path_factory):
    """Many studies at a tiny image size: enough rows for label statistics, fast to write."""
    root = tmp_path_factory.mktemp("cxr_labels")
    return generate_synth_cxr(root, n_patients=1200, image_size=16, seed=11)


def test_cxr_metadata_matches_pacs_schema(cxr):
    root, meta = cxr
    assert list(meta.columns) == CXR_COLUMNS
    on_disk = pd.read_csv(root / "metadata.csv")
    assert list(on_disk.columns) == CXR_COLUMNS
    pd.testing.assert_frame_equal(on_disk, meta, check_dtype=False)

    assert all(re.fullmatch(r"P\d{5}", p) for p in meta["PatientID"])
    assert meta["StudyID"].is_unique
    assert (meta["ImageFile"] == "images/" + meta["StudyID"] + ".png").all()
    assert meta["PatientSex"].isin(["M", "F"]).all()
    assert meta["ViewPosition"].isin(["PA", "AP"]).all()
    assert meta["PatientAge"].between(18, 95).all()
    for f in FINDINGS:
        assert pd.api.types.is_integer_dtype(meta[f]) and meta[f].between(0, 4).all()

    per_patient = meta.groupby("PatientID")
    assert per_patient.size().between(1, 4).all() and per_patient.size().max() > 1  # ids repeat
    assert (per_patient["PatientSex"].nunique() == 1).all()
    assert per_patient["PatientAge"].apply(lambda a: a.is_monotonic_increasing).all()


def test_cxr_pngs_are_readable_grayscale_and_distinct(cxr):
    root, meta = cxr
    for f in meta["ImageFile"]:
        with Image.open(root / f) as img:
            assert img.format == "PNG" and img.mode == "L" and img.size == (128, 128)
    pixels = _images(root, meta)
    assert len({p.tobytes() for p in pixels}) == len(pixels)
    # Radiograph-like: dark background corners, bright mediastinum, darker lungs beside it.
    mean = pixels.mean(axis=0)
    assert mean[:8, :8].mean() < 40
    assert mean[_box(128, (-0.05, 0.05), (-0.5, -0.2))].mean() > mean[_box(128, (-0.5, -0.3), (-0.5, -0.2))].mean() + 40


def test_cxr_label_model(cxr_labels):
    meta = cxr_labels
    positive = meta[FINDINGS] >= 3
    assert ((meta[FINDINGS] == 0).mean() > 0.5).all()  # grade 0 is the majority
    assert positive.mean().between(0.12, 0.38).all()
    assert meta[FINDINGS].isin([1, 2]).any().all()  # mild grades exist
    corr = positive.astype(float).corr().to_numpy()
    assert corr[np.triu_indices(len(FINDINGS), 1)].mean() > 0.02  # co-morbid findings
    old = meta["PatientAge"] >= 70
    assert positive[old].mean().mean() > positive[~old].mean().mean()
    assert 0.4 < meta["PatientAge"].between(50, 85).mean() < 0.9
    assert {"M", "F"} == set(meta["PatientSex"]) and {"PA", "AP"} == set(meta["ViewPosition"])


def test_cxr_is_deterministic_per_seed(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    meta = generate_synth_cxr(a, n_patients=8, seed=5)
    generate_synth_cxr(b, n_patients=8, seed=5)
    generate_synth_cxr(c, n_patients=8, seed=6)
    assert (a / "metadata.csv").read_bytes() == (b / "metadata.csv").read_bytes()
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in meta["ImageFile"])
    assert (a / "metadata.csv").read_bytes() != (c / "metadata.csv").read_bytes()
    first = meta["ImageFile"].iloc[0]  # P00000_S01 exists for every seed
    assert (a / first).read_bytes() != (c / first).read_bytes()


def test_cxr_cardiomegaly_enlarges_heart_silhouette(cxr):
    root, meta = cxr
    pixels = _images(root, meta)
    # Just beyond the normal left heart border (image right, lower thorax).
    border = pixels[(slice(None), *_box(128, (0.4, 0.52), (0.18, 0.38)))].mean(axis=(1, 2))
    grade = meta["cardiomegaly"].to_numpy()
    assert (grade >= 3).sum() >= 5 and (grade == 0).sum() >= 5
    assert border[grade >= 3].mean() > border[grade == 0].mean() + 30


@pytest.mark.parametrize(
    "finding, region",
    [
        # (x range, y range) that must hold most of the finding's signal; y grows downwards.
        ("cardiomegaly", ((-0.3, 0.8), (-0.1, 0.8))),
        ("pleural_effusion", ((-0.8, 0.8), (-0.3, 0.8))),
        ("pneumonic_infiltrate", ((-0.8, 0.8), (-0.8, 0.7))),
        ("atelectasis", ((-0.8, 0.8), (-0.05, 0.6))),
        ("nodule", ((-0.8, 0.8), (-0.8, 0.7))),
    ],
)
def test_cxr_finding_is_drawn_where_expected_and_grows_with_grade(cxr, tmp_path, finding, region):
    root, meta = cxr
    # visibility=0 for everyone renders the very same images without this finding.
    hidden = generate_synth_cxr(
        tmp_path, n_patients=60, seed=3, subgroup_effect={"finding": finding, "visibility": 0.0, **EVERYONE}
    )
    pd.testing.assert_frame_equal(hidden, meta)
    signal = _images(root, meta) - _images(tmp_path, hidden)
    assert signal.min() >= 0  # findings only add density
    grade = meta[finding].to_numpy()
    assert not signal[grade == 0].any()

    total = signal.sum(axis=(1, 2))
    mild, positive = total[np.isin(grade, [1, 2])], total[grade >= 3]
    assert len(mild) and len(positive)
    assert positive.mean() > 2.5 * mild.mean() > 0
    inside = signal[(grade >= 3, *_box(128, *region))].sum()
    assert inside > 0.9 * signal[grade >= 3].sum()


def test_cxr_visibility_only_touches_the_group(cxr, tmp_path):
    root, meta = cxr
    effect = {"finding": "pleural_effusion", "attribute": "sex", "group": "F", "visibility": 0.5}
    faint = generate_synth_cxr(tmp_path, n_patients=60, seed=3, subgroup_effect=effect)
    pd.testing.assert_frame_equal(faint, meta)  # prevalence 1: labels unchanged
    base, dim = _images(root, meta), _images(tmp_path, faint)
    female = (meta["PatientSex"] == "F").to_numpy()
    absent, sick = (meta["pleural_effusion"] == 0).to_numpy(), (meta["pleural_effusion"] >= 3).to_numpy()
    assert np.array_equal(base[~female | absent], dim[~female | absent])
    assert (female & sick).sum() >= 2
    lower_lungs = (slice(None), *_box(128, (-0.7, 0.7), (0.1, 0.7)))
    assert (base[female & sick][lower_lungs] >= dim[female & sick][lower_lungs]).all()
    assert base[female & sick][lower_lungs].mean() > dim[female & sick][lower_lungs].mean() + 3


def test_cxr_prevalence_changes_frequency_in_group_only(tmp_path):
    kwargs = {"n_patients": 400, "image_size": 16, "seed": 2}
    base = generate_synth_cxr(tmp_path / "base", **kwargs)
    group = {"finding": "nodule", "attribute": "age", "group": [70, 100]}
    none = generate_synth_cxr(tmp_path / "none", subgroup_effect={**group, "prevalence": 0.0}, **kwargs)
    more = generate_synth_cxr(tmp_path / "more", subgroup_effect={**group, "prevalence": 1.8}, **kwargs)
    inside = base["PatientAge"].between(70, 99).to_numpy()
    assert (none.loc[inside, "nodule"] == 0).all()
    assert (more.loc[inside, "nodule"] >= 3).mean() > (base.loc[inside, "nodule"] >= 3).mean() + 0.1
    for other in (none, more):
        pd.testing.assert_frame_equal(other[~inside], base[~inside])
        pd.testing.assert_frame_equal(other[FINDINGS[:4]], base[FINDINGS[:4]])


def _files(root, meta) -> dict[str, bytes]:
    return {f: (root / f).read_bytes() for f in ["metadata.csv", *meta["ImageFile"]]}


def test_cxr_without_shift_is_unchanged(tmp_path):
    kwargs = {"n_patients": 12, "image_size": 64, "seed": 8}
    base = generate_synth_cxr(tmp_path / "base", **kwargs)
    defaults = {"gamma": 1.0, "noise_sd": cxr_module.NOISE_SD, "presence_logit": 0.0}
    for name, shift in (("empty", {}), ("defaults", defaults)):
        meta = generate_synth_cxr(tmp_path / name, shift=shift, **kwargs)
        assert _files(tmp_path / name, meta) == _files(tmp_path / "base", base)
    assert cxr_module.parse_shift(None) == cxr_module.parse_shift({}) == cxr_module.DomainShift()
    assert cxr_module.DomainShift().age_beta == AGE_BETA


@pytest.fixture(scope="module")
def cxr_shift_base(tmp_path_factory):
    root = tmp_path_factory.mktemp("cxr_shift")
    kwargs = {"n_patients": 15, "image_size": 64, "seed": 4}
    return root, kwargs, _images(root, generate_synth_cxr(root, **kwargs))


def test_cxr_shift_gamma_darkens_mid_tones_only(cxr_shift_base, tmp_path):
    root, kwargs, base = cxr_shift_base
    meta = generate_synth_cxr(tmp_path, shift={"gamma": 1.5}, **kwargs)
    pd.testing.assert_frame_equal(meta, pd.read_csv(root / "metadata.csv"), check_dtype=False)  # labels unchanged
    shifted = _images(tmp_path, meta)
    assert (shifted <= base + 1).all()  # a gamma > 1 on [0, 1] never brightens (up to rounding)
    assert np.median(shifted) < np.median(base) - 10
    # Not an affine change: min/max rescaling, as preprocessing does, still leaves darker mid-tones.
    scaled = [(x - x.min()) / (x.max() - x.min()) for x in (base, shifted)]
    assert np.median(scaled[1]) < np.median(scaled[0]) - 0.03


def test_cxr_shift_noise_sd_scales_the_noise(cxr_shift_base, tmp_path):
    _, kwargs, base = cxr_shift_base
    clean = _images(tmp_path / "clean", generate_synth_cxr(tmp_path / "clean", shift={"noise_sd": 0.0}, **kwargs))
    noisy = _images(tmp_path / "noisy", generate_synth_cxr(tmp_path / "noisy", shift={"noise_sd": 0.075}, **kwargs))
    centre = (slice(None), *_box(64, (-0.6, 0.6), (-0.5, 0.5)))  # inside the body: no clipping at 0
    default_sd, noisy_sd = ((x - clean)[centre].std() / 255 for x in (base, noisy))
    assert default_sd == pytest.approx(cxr_module.NOISE_SD, rel=0.2)
    assert noisy_sd / default_sd == pytest.approx(3.0, rel=0.15)


def test_cxr_shift_presence_logit_moves_positive_rates(tmp_path):
    kwargs = {"n_patients": 300, "image_size": 16, "seed": 5}
    rates = {
        shift: (generate_synth_cxr(tmp_path / str(shift), shift={"presence_logit": shift}, **kwargs)[FINDINGS] >= 3)
        .mean()
        .to_numpy()
        for shift in (-1.0, 0.0, 1.0)
    }
    assert (rates[-1.0] < rates[0.0] - 0.03).all() and (rates[1.0] > rates[0.0] + 0.03).all()


def test_cxr_shift_age_sets_the_age_mix(tmp_path):
    kwargs = {"n_patients": 500, "image_size": 16, "seed": 6}
    base = generate_synth_cxr(tmp_path / "base", **kwargs)
    young = generate_synth_cxr(tmp_path / "young", shift={"age": {"mean": 45, "sd": 12}}, **kwargs)
    first = young.loc[young["StudyID"].str.endswith("_S01"), "PatientAge"]
    assert first.mean() == pytest.approx(45, abs=2) and first.std() == pytest.approx(12, abs=1.5)
    assert young["PatientAge"].between(18, 95).all()
    assert base["PatientAge"].mean() > young["PatientAge"].mean() + 15


@pytest.mark.parametrize(
    "shift, bad_key",
    [
        ({"contrast": 1.2}, "contrast"),
        ({"gamma": 0}, "gamma"),
        ({"noise_sd": -0.1}, "noise_sd"),
        ({"presence_logit": "x"}, "presence_logit"),
        ({"age": {"mean": 50}}, "age"),
        ({"age": {"mean": 50, "sd": 60}}, "age"),
        ({"age": {"mean": 10, "sd": 5}}, "age"),
    ],
)
def test_bad_shift_names_the_key(tmp_path, shift, bad_key):
    with pytest.raises(ValueError, match=bad_key):
        generate_synth_cxr(tmp_path / "out", n_patients=2, shift=shift)
    assert not (tmp_path / "out").exists()  # validated before anything is written


# ----------------------------------------------------------------------------- CT


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    root = tmp_path_factory.mktemp("ct")
    return root, generate_synth_ct(root, n_patients=24, seed=3)


def _pancreas_region(img: nib.Nifti1Image, scale: float) -> np.ndarray:
    """Voxel mask of the nominal pancreas ellipsoid scaled by ``scale`` (physical coordinates)."""
    ijk = np.indices(img.shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(img.affine, ijk)
    semi = scale * np.asarray(ct_module.PANCREAS_SEMI_AXES)
    return ((((xyz - ct_module.PANCREAS_CENTER) / semi) ** 2).sum(axis=1) < 1).reshape(img.shape)


def test_ct_metadata_and_nifti(ct):
    root, meta = ct
    assert list(meta.columns) == CT_COLUMNS
    pd.testing.assert_frame_equal(pd.read_csv(root / "metadata.csv"), meta, check_dtype=False)
    assert all(re.fullmatch(r"P\d{4}", p) for p in meta["PatientID"])
    assert meta["StudyID"].is_unique
    assert (meta["VolumeFile"] == "volumes/" + meta["PatientID"] + ".nii.gz").all()
    assert meta["PatientAge"].between(18, 95).all() and meta["PatientSex"].isin(["M", "F"]).all()
    assert set(meta["lesion"]) == {0, 1}

    zooms = []
    for f in meta["VolumeFile"]:
        img = nib.load(root / f)
        assert img.shape == (48, 48, 40) and img.get_data_dtype() == np.int16
        assert np.allclose(np.diag(img.affine)[:3], img.header.get_zooms())
        zooms.append(img.header.get_zooms())
    zooms = np.asarray(zooms)
    assert zooms.min() >= 1.4 and zooms.max() <= 3.1 and zooms.std(axis=0).min() > 0.05


def test_ct_hounsfield_content(ct):
    root, meta = ct
    hu = np.asarray(nib.load(root / meta["VolumeFile"].iloc[0]).dataobj, dtype=np.float64)
    assert abs(hu[:3, :3, :].mean() + 1000) < 10  # air in the corners
    assert hu.max() > 400  # bone
    assert (np.abs(hu + 100) < 25).mean() > 0.02  # fat
    assert (np.abs(hu - 45) < 25).mean() > 0.1  # soft tissue


def test_ct_is_deterministic_per_seed(tmp_path):
    a = generate_synth_ct(tmp_path / "a", n_patients=4, seed=9)
    b = generate_synth_ct(tmp_path / "b", n_patients=4, seed=9)
    c = generate_synth_ct(tmp_path / "c", n_patients=4, seed=10)
    assert (tmp_path / "a/metadata.csv").read_bytes() == (tmp_path / "b/metadata.csv").read_bytes()
    assert np.array_equal(_volumes(tmp_path / "a", a), _volumes(tmp_path / "b", b))
    assert not np.array_equal(_volumes(tmp_path / "a", a), _volumes(tmp_path / "c", c))


@pytest.fixture(scope="module")
def ct_lesion_contrast(ct, tmp_path_factory):
    """Per-volume HU removed by the lesion: the same volumes rendered with visibility 0, minus the originals."""
    root, meta = ct
    hidden_root = tmp_path_factory.mktemp("ct_hidden")
    effect = {"finding": "lesion", "visibility": 0, **EVERYONE}
    hidden = generate_synth_ct(hidden_root, n_patients=24, seed=3, subgroup_effect=effect)
    pd.testing.assert_frame_equal(hidden, meta)
    return _volumes(hidden_root, hidden) - _volumes(root, meta)


def test_ct_lesion_is_hypodense_in_the_pancreas(ct, ct_lesion_contrast):
    root, meta = ct
    images = [nib.load(root / f) for f in meta["VolumeFile"]]
    means = np.array([np.asarray(img.dataobj)[_pancreas_region(img, 0.6)].mean() for img in images])
    lesion = meta["lesion"].to_numpy() == 1
    assert means[lesion].mean() < means[~lesion].mean() - 15

    contrast = ct_lesion_contrast
    assert not contrast[~lesion].any()
    assert contrast.min() >= 0 and contrast[lesion].max(axis=(1, 2, 3)).min() >= 30
    # Each lesion is a sizeable blob confined to the pancreas region (which jitters per patient).
    for img, c in zip(np.asarray(images, dtype=object)[lesion], contrast[lesion]):
        blob = c > 20
        assert blob.sum() > 100
        assert not (blob & ~_pancreas_region(img, 1.5)).any()


def test_ct_visibility_scales_lesion_contrast_in_group_only(ct, ct_lesion_contrast, tmp_path):
    root, meta = ct
    female = (meta["PatientSex"] == "F").to_numpy()
    lesion = meta["lesion"].to_numpy() == 1
    assert (female & lesion).any() and (~female & lesion).any()

    effect = {"finding": "lesion", "attribute": "sex", "group": "F", "visibility": 0.5}
    half = generate_synth_ct(tmp_path, n_patients=24, seed=3, subgroup_effect=effect)
    pd.testing.assert_frame_equal(half, meta)
    half_contrast = ct_lesion_contrast - (_volumes(tmp_path, half) - _volumes(root, meta))
    assert np.array_equal(half_contrast[~female], ct_lesion_contrast[~female])
    ratio = half_contrast[female & lesion].sum() / ct_lesion_contrast[female & lesion].sum()
    assert 0.45 < ratio < 0.55


def test_ct_prevalence_changes_lesion_frequency_in_group_only(tmp_path):
    kwargs = {"n_patients": 60, "shape": (12, 12, 10), "seed": 4}
    effect = {"finding": "lesion", "attribute": "sex", "group": "F"}
    base = generate_synth_ct(tmp_path / "base", **kwargs)
    none = generate_synth_ct(tmp_path / "none", subgroup_effect={**effect, "prevalence": 0}, **kwargs)
    more = generate_synth_ct(tmp_path / "more", subgroup_effect={**effect, "prevalence": 2.5}, **kwargs)
    female = base["PatientSex"] == "F"
    assert none.loc[female, "lesion"].sum() == 0 < base.loc[female, "lesion"].sum()
    assert more.loc[female, "lesion"].mean() > base.loc[female, "lesion"].mean() + 0.2
    for other in (none, more):
        pd.testing.assert_frame_equal(other[~female], base[~female])


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "generator, effect, bad_key",
    [
        (generate_synth_cxr, {"finding": "fracture", "attribute": "sex", "group": "F"}, "finding"),
        (generate_synth_cxr, {"finding": "nodule", "attribute": "race", "group": "F"}, "attribute"),
        (generate_synth_cxr, {"finding": "nodule", "attribute": "sex", "group": "X"}, "group"),
        (generate_synth_cxr, {"finding": "nodule", "attribute": "age", "group": [90, 80]}, "group"),
        (generate_synth_cxr, {"finding": "nodule", "attribute": "sex", "group": "F", "visibility": -1}, "visibility"),
        (generate_synth_cxr, {"finding": "nodule", "attribute": "sex", "group": "F", "prevalence": "x"}, "prevalence"),
        (generate_synth_cxr, {"finding": "nodule", "attribute": "sex", "group": "F", "colour": 1}, "colour"),
        (generate_synth_cxr, {"attribute": "sex", "group": "F"}, "finding"),
        (generate_synth_ct, {"finding": "nodule", "attribute": "sex", "group": "F"}, "finding"),
        (generate_synth_ct, {"finding": "lesion", "attribute": "height", "group": "F"}, "attribute"),
    ],
)
def test_bad_subgroup_effect_names_the_key(tmp_path, generator, effect, bad_key):
    with pytest.raises(ValueError, match=bad_key):
        generator(tmp_path / "out", n_patients=2, subgroup_effect=effect)
    assert not (tmp_path / "out").exists()  # validated before anything is written
