"""Where a client finds the service when none is named (light: the command line reads it)."""

SERVER_ENV = "KEYLESS_SERVER"  # the environment variable naming the service
DEFAULT_SERVER = "http://127.0.0.1:8000"  # where ``keyless serve`` listens by default
