"""The errors a user can cause, each printed by the command line as one line (exit status 2).

They live here, apart from the code that raises them, so the command line can catch them without
importing torch or transformers (`datadistill --help` stays fast).
"""

from __future__ import annotations


class DataError(ValueError):
    """Bad input; the message names the file, the line and the problem."""


class ConfigError(ValueError):
    """A config value or key is wrong; the message says where and how to fix it."""


class ModelFolderError(ValueError):
    """A model folder is missing a file or holds one that cannot be read; the message names the file."""


class TeacherError(RuntimeError):
    """A teacher failed (crashed, timed out, answered malformed lines); the message says how."""


class StaleInputError(ConfigError):
    """A step was asked for while a step it reads from is out of date; the message names which and why."""


class MissingExtraError(ConfigError):
    """An optional package a command needs is not installed; the message gives the pip line that installs it."""
