"""Errors a user can fix. The CLI prints their message as one sentence and exits with `exit_code`, no traceback."""


class I2FETError(Exception):
    """Base class for user-facing errors; the message is a complete sentence."""

    exit_code = 2


class InputError(I2FETError):
    """The instruction, an option or an input file is not acceptable."""


class WeightsError(I2FETError):
    """Model weights or encoder files are missing, corrupt or do not match."""


class OutputError(I2FETError):
    """An output path cannot be written."""
