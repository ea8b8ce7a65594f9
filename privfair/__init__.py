"""privfair: privacy-utility-fairness studies of medical-imaging classifiers."""

__version__ = "0.1.0"
