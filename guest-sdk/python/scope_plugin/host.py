"""The `host` capability: the host's name, the time, and the daemon's log."""

from wit_world.imports import host as _wit
from wit_world.imports.host import LogLevel


def hostname() -> str:
    return _wit.hostname()


def now() -> int:
    """Milliseconds since the Unix epoch."""
    return _wit.now()


def log(level: LogLevel, message: str) -> None:
    _wit.log(level, message)


def debug(message: str) -> None:
    log(LogLevel.DEBUG, message)


def info(message: str) -> None:
    log(LogLevel.INFO, message)


def warn(message: str) -> None:
    log(LogLevel.WARN, message)


def error(message: str) -> None:
    log(LogLevel.ERROR, message)
