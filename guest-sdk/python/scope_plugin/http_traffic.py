"""The `http-traffic` capability: HTTP requests read and responses written per
process, counted by the host with eBPF. Privileged: only when granted. Raises
`HostError` (`denied`, `unavailable`, `timeout`)."""

from wit_world.imports import http_traffic as _wit

from .errors import call


def counters() -> list:
    """Every live process's counters (`pid`, `requests`, `responses`); they only grow."""
    return call(_wit.counters)
