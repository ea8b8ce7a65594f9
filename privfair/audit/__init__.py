"""Stage ``audit`` (rules ``audit_membership``, ``aggregate_audit`` and the optional canary audit): empirical checks
of what a model leaks, which do not trust the accountant."""
