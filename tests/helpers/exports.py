"""Small datasets in the real on-disk layouts and formats (PNG, JPEG, DICOM, NIfTI, npz), written by the tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

NIH_TABLE = Path(__file__).parents[1] / "data" / "Data_Entry_2017_v2020.csv.gz"


def noise(rng, shape, dtype=np.uint8, high=255):
    return rng.integers(0, high, shape).astype(dtype)


def nih_lines(n_per_finding: int = 20, max_images: int = 3) -> list[str]:
    """Header and rows of the real NIH table: the first ``max_images`` images of ``n_per_finding`` patients per
    finding and as many patients without findings, so every finding has positives in every split."""
    with gzip.open(NIH_TABLE, "rt") as file:
        header, *rows = file.read().splitlines()
    by_patient: dict[str, list[str]] = {}
    for row in rows:
        by_patient.setdefault(row.split(",")[3], []).append(row)
    chosen, counts = [], {}
    for patient_rows in by_patient.values():
        findings = {f for row in patient_rows[:max_images] for f in row.split(",")[1].split("|")}
        if any(counts.get(f, 0) < n_per_finding for f in findings):
            chosen += patient_rows[:max_images]
            for finding in findings:
                counts[finding] = counts.get(finding, 0) + 1
    return [header, *chosen]


def write_nih(root: Path, lines: list[str], size: int = 32, seed: int = 0, test_patients: set | None = None) -> Path:
    """The NIH download's layout: ``Data_Entry_2017_v2020.csv``, PNGs in ``images_001/images``, optional lists."""
    rng = np.random.default_rng(seed)
    (root / "images_001" / "images").mkdir(parents=True)
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    for row in lines[1:]:
        Image.fromarray(noise(rng, (size, size))).save(root / "images_001" / "images" / row.split(",")[0])
    if test_patients is not None:
        names = {
            split: [r.split(",")[0] for r in lines[1:] if (r.split(",")[3] in test_patients) == (split == "test")]
            for split in ("train", "test")
        }
        (root / "train_val_list.txt").write_text("\n".join(names["train"]) + "\n")
        (root / "test_list.txt").write_text("\n".join(names["test"]) + "\n")
    return root


CHEXPERT_FINDINGS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)


def write_chexpert(root: Path, n_patients: int = 12, seed: int = 0) -> Path:
    """``CheXpert-v1.0-small/{train,valid}.csv`` and JPEGs at ``{train,valid}/patientNNNNN/studyN/viewN_*.jpg``."""
    rng = np.random.default_rng(seed)
    codes = [1.0, 0.0, -1.0, None]
    for split, patients in (("train", range(n_patients)), ("valid", range(n_patients, n_patients + 4))):
        rows = []
        for p in patients:
            for view, frontal in (("view1_frontal", "Frontal"), ("view2_lateral", "Lateral")):
                relative = f"{split}/patient{p:05d}/study1/{view}.jpg"
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(noise(rng, (30, 26, 3))).save(root / relative)
                rows.append(
                    {
                        "Path": f"{root.name}/{relative}",
                        "Sex": ["Female", "Male"][p % 2],
                        "Age": 30 + p,
                        "Frontal/Lateral": frontal,
                        "AP/PA": "PA" if frontal == "Frontal" else None,
                        **{f: codes[(p + i) % 4] for i, f in enumerate(CHEXPERT_FINDINGS)},
                    }
                )
        pd.DataFrame(rows).to_csv(root / f"{split}.csv", index=False)
    return root


def write_mimic(root: Path, n_subjects: int = 8, seed: int = 0, with_patients: bool = True) -> Path:
    """MIMIC-CXR-JPG's tables (``*.csv.gz``) and ``files/pXX/pSUBJECT/sSTUDY/DICOM.jpg``; MIMIC-IV ``patients``."""
    rng = np.random.default_rng(seed)
    metadata, labels, split, patients = [], [], [], []
    for i in range(n_subjects):
        subject = 10000000 + i
        patients.append({"subject_id": subject, "gender": "FM"[i % 2], "anchor_age": 40 + i, "anchor_year": 2150})
        for s in range(2):
            study = 50000000 + 10 * i + s
            labels.append(
                {
                    "subject_id": subject,
                    "study_id": study,
                    **{f: [1.0, 0.0, -1.0, None][(i + s + k) % 4] for k, f in enumerate(CHEXPERT_FINDINGS)},
                }
            )
            for view in ("PA", "LATERAL"):
                dicom = f"d{i}{s}{view}"
                metadata.append(
                    {
                        "dicom_id": dicom,
                        "subject_id": subject,
                        "study_id": study,
                        "ViewPosition": view,
                        "StudyDate": 21500101 + s * 10000,
                    }
                )
                split.append(
                    {
                        "dicom_id": dicom,
                        "study_id": study,
                        "subject_id": subject,
                        "split": "test" if i >= n_subjects - 2 else "validate" if i == 0 else "train",
                    }
                )
                path = root / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(noise(rng, (28, 28))).save(path)
    for name, rows in (("metadata", metadata), ("chexpert", labels), ("split", split)):
        pd.DataFrame(rows).to_csv(root / f"mimic-cxr-2.0.0-{name}.csv.gz", index=False)
    if with_patients:
        pd.DataFrame(patients).to_csv(root / "patients.csv.gz", index=False)
    return root


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", **tags) -> Path:
    """A minimal radiograph DICOM file (12-bit, uncompressed) with the given tags."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 16, 12, 11, 0, 1
    ds.PhotometricInterpretation = photometric
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


VINDR_FINDINGS = ("Aortic enlargement", "Pleural effusion", "No finding")


def write_vindr(root: Path, n_train: int = 6, n_test: int = 3, seed: int = 0) -> Path:
    """VinDr-CXR: ``{train,test}/<image_id>.dicom`` and ``annotations/image_labels_{train,test}.csv`` (three
    radiologists per training image)."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        rows = []
        for i in range(n):
            image_id = f"{split}{i:03d}"
            write_dicom(
                root / split / f"{image_id}.dicom",
                noise(rng, (36, 32), np.uint16, 4096),
                photometric="MONOCHROME1" if i % 2 else "MONOCHROME2",
                PatientSex="FM"[i % 2],
                PatientAge=f"{40 + i:03d}Y",
                ViewPosition="PA",
                WindowCenter=2048,
                WindowWidth=4096,
            )
            raters = ("R1", "R2", "R3") if split == "train" else ("consensus",)
            for r, rater in enumerate(raters):
                # finding 0: marked by raters 0..i%3 (majority when i%3 >= 1); finding 1: by one rater only
                marks = [int(r <= i % 3 - 1), int(r == 0 and i % 2 == 0), 0]
                rows.append(
                    {
                        "image_id": image_id,
                        **({"rad_id": rater} if split == "train" else {}),
                        **dict(zip(VINDR_FINDINGS, marks)),
                    }
                )
        pd.DataFrame(rows).to_csv(root / "annotations" / f"image_labels_{split}.csv", index=False)
    return root


HOSPITAL_FINDINGS = (
    "cardiomegaly",
    "congestion",
    "pleural_effusion_left",
    "pleural_effusion_right",
    "pneumonic_infiltrates_left",
    "pneumonic_infiltrates_right",
    "atelectasis_left",
    "atelectasis_right",
)


def write_hospital(root: Path, n_patients: int = 10, seed: int = 0, suffix: str = ".csv") -> Path:
    """A hospital export: one row per image with graded (0-4) findings, German-style sex codes, PNG images."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for s in range(2):
            name = f"png/{p:04d}_{s}.png"
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(noise(rng, (40, 40))).save(root / name)
            rows.append(
                {
                    "file": name,
                    "pid": f"P{p:04d}",
                    "exam": f"E{p:04d}{s}",
                    "alter": 50 + p,
                    "geschlecht": "wm"[p % 2],
                    **{f"{f}_grade": (p + s + i) % 5 for i, f in enumerate(HOSPITAL_FINDINGS)},
                }
            )
    table = pd.DataFrame(rows)
    if suffix == ".parquet":
        table.to_parquet(root / "export.parquet", index=False)
    else:
        table.to_csv(root / "export.csv", index=False)
    return root


def hospital_options(table: str = "export.csv") -> dict:
    return {
        "table": table,
        "columns": {"image": "file", "patient_id": "pid", "study_id": "exam", "age": "alter", "sex": "geschlecht"},
        "labels": {f: f"{f}_grade" for f in HOSPITAL_FINDINGS},
        "positive_grades": [3, 4],
        "sex_codes": {"F": ["w"], "M": ["m"]},
    }


def write_msd(root: Path, n_cases: int = 6, seed: int = 0) -> Path:
    """MSD Task07: ``dataset.json``, ``imagesTr/pancreas_NNN.nii.gz`` (HU) and label maps with classes 0/1/2."""
    rng = np.random.default_rng(seed)
    training = []
    for i in range(n_cases):
        name = f"pancreas_{i:03d}.nii.gz"
        affine = np.diag([1.5, 1.5, 3.0, 1.0])
        image = rng.integers(-200, 300, (20, 20, 8)).astype(np.int16)
        label = np.zeros((20, 20, 8), np.uint8)
        label[8:12, 8:12, 3:5] = 1
        if i % 2:
            label[9:11, 9:11, 4] = 2
        for folder, data in (("imagesTr", image), ("labelsTr", label)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(data, affine), root / folder / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    description = {
        "name": "Pancreas",
        "labels": {"0": "background", "1": "pancreas", "2": "cancer"},
        "numTraining": n_cases,
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(description))
    return root


def write_medmnist(root: Path, shape=(28, 28), n=(10, 4, 4), n_classes: int = 2, seed: int = 0) -> Path:
    """A MedMNIST-style ``.npz`` (``{train,val,test}_{images,labels}``, labels of shape (N, 1))."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        arrays[f"{split}_images"] = noise(rng, (count, *shape))
        arrays[f"{split}_labels"] = (np.arange(count) % n_classes).reshape(-1, 1)
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / "set.npz", **arrays)
    return root


def rewrite_table(path: Path, edit) -> Path:
    """Apply ``edit`` (a function of the table) to a CSV or parquet export, every cell read and written as text."""
    if path.suffix == ".parquet":
        edit(pd.read_parquet(path)).to_parquet(path, index=False)
    else:
        edit(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)
    return path


def write_volume(path: Path, data: np.ndarray, spacing=(1.5, 1.5, 3.0)) -> Path:
    """A NIfTI volume (e.g. CT in HU) with the given voxel spacing in mm."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), path)
    return path
