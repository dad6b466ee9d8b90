"""The exceptions a user of keyless can cause, each with a one-line message, and the exit status
the command line gives for each."""

from enum import IntEnum


class ExitStatus(IntEnum):
    """What ``keyless`` exits with: one meaning per value (docs/cli.md lists them)."""

    OK = 0
    FAILED = 1  # an output could not be written, or the work itself failed
    USAGE = 2  # options that are missing, malformed or do not go together
    BAD_INPUT = 3  # an input file, folder or array is missing, unreadable or of the wrong kind
    BAD_KEY = 4  # a key, key file or master secret is missing, malformed or does not fit
    UNKNOWN_NAME = 5  # a cipher, model, attack or other registered name that does not exist
    SERVICE = 6  # the keyless service could not be reached or refused the request
    INTERRUPTED = 130  # Ctrl-C or kill: cleanup ran, no temporary file is left


class KeylessError(Exception):
    """Base class: every error a user can cause; the CLI prints it on one line."""

    exit_code = ExitStatus.FAILED


class InputError(KeylessError):
    """An input (file, folder, array) is missing, unreadable or of the wrong kind."""

    exit_code = ExitStatus.BAD_INPUT


class OutputError(KeylessError):
    """An output cannot be written (permissions, a full disk, a name too long, a file in place)."""

    exit_code = ExitStatus.FAILED


class ListenError(KeylessError, OSError):
    """The service cannot listen where it was asked: a port in use, a host that does not resolve
    or is not an address of this machine."""

    exit_code = ExitStatus.FAILED


class KeyMaterialError(KeylessError):
    """A key, key file or master secret is missing, malformed or does not fit the data."""

    exit_code = ExitStatus.BAD_KEY


class UnknownNameError(KeylessError, LookupError):
    """A registry was asked for a name it does not hold."""

    exit_code = ExitStatus.UNKNOWN_NAME


class ConfigError(KeylessError, ValueError):
    """Options that do not go together (e.g. client augmentation with server re-keying)."""

    exit_code = ExitStatus.USAGE
