"""The `docker` capability: read-only, typed Docker Engine queries. Raises
`HostError` (`unavailable`, `timeout`, `not-found`, `denied`, `failed`)."""

from wit_world.imports import docker as _wit

from .errors import call


def containers(all: bool = False) -> list:
    """Containers (running ones only unless `all`), as typed records."""
    return call(_wit.list_containers, all)


def inspect(container_id: str):
    return call(_wit.inspect_container, container_id)


def images() -> list:
    return call(_wit.list_images)


def get(path: str) -> str:
    """The Engine's JSON for an allow-listed read-only path (`/version`, ...)."""
    return call(_wit.get, path)
