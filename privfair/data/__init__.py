"""Stage ``data`` (rules ``generate_synthetic``, ``ingest``, ``split``, ``preprocess``, ``summarise_dataset``): a
dataset's own files → the standardised manifest → a patient-level split and a memory-mapped MONAI cache."""
