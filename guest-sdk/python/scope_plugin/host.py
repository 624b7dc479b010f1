"""The `host` capability: the host's name, the time, the daemon's log, and
the operator's settings for this plugin."""

from wit_world.imports import host as _wit
from wit_world.imports.host import LogLevel


def hostname() -> str:
    return _wit.hostname()


def now() -> int:
    """Milliseconds since the Unix epoch."""
    return _wit.now()


def settings() -> dict[str, str]:
    """The operator's settings for this plugin (`settings` in its config section)."""
    return dict(_wit.settings())


def setting(key: str, default: str | None = None) -> str | None:
    """One setting, or `default` if the operator did not set it."""
    value = _wit.setting(key)
    return default if value is None else value


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
