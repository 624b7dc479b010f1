"""The `procfs` capability: text files of a safe subset of /proc. Raises `HostError`
(`denied`, `not-found`, `too-large`, `io`)."""

from wit_world.imports import procfs as _wit

from .errors import call


def read(path: str) -> str:
    """A file relative to /proc (`"stat"`, `"1234/status"`)."""
    return call(_wit.read, path)


def pids() -> list:
    return call(_wit.list_pids)
