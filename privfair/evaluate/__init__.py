"""Stage ``evaluate`` (rules ``evaluate``, ``aggregate``): validation-chosen thresholds, patient-level paired
bootstrap metrics per run, and the privacy-utility tables across the grid."""
