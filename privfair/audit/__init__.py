"""Privacy audits: empirical checks of what a model leaks, which do not trust the accountant."""
