"""The exceptions a user of keyless can cause, each with a one-line message."""


class KeylessError(Exception):
    """Base class: every error a user can cause; the CLI prints it on one line."""

    exit_code = 1


class InputError(KeylessError):
    """An input (file, folder, array) is missing, unreadable or of the wrong kind."""

    exit_code = 2


class OutputError(KeylessError):
    """An output cannot be written (permissions, a full disk, a name too long, a file in place)."""

    exit_code = 1


class KeyMaterialError(KeylessError):
    """A key, key file or master secret is missing, malformed or does not fit the data."""

    exit_code = 3


class UnknownNameError(KeylessError, LookupError):
    """A registry was asked for a name it does not hold."""

    exit_code = 4


class ConfigError(KeylessError, ValueError):
    """Options that do not go together (e.g. client augmentation with server re-keying)."""

    exit_code = 2
