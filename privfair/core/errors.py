"""Errors that users act on: each names the file, row or config key at fault."""


class PrivfairError(Exception):
    """Base class: the message alone must tell the user what to fix."""


class ConfigError(PrivfairError, ValueError):
    """A config value is unusable; the message names the key."""


class ManifestError(PrivfairError, ValueError):
    """A metadata table or manifest is malformed; the message names the file and, where known, the row."""


class TrainingError(PrivfairError, RuntimeError):
    """Training cannot go on with these settings; the message says which setting to change."""


class ResumeError(PrivfairError, RuntimeError):
    """A resumable checkpoint cannot be used for this run; the message names the file and what differs."""


class CheckpointError(PrivfairError, RuntimeError):
    """A model checkpoint cannot be read safely; the message names the file."""


class TrainingInterrupted(PrivfairError, RuntimeError):
    """Training stopped on a signal (time limit, preemption) after saving its state; the next attempt resumes."""


class NoSpaceError(PrivfairError, OSError):
    """An output does not fit on its disk; the message names the output and the space it needs."""
