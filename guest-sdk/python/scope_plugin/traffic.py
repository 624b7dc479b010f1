"""The `traffic` capability: shaping a container's `eth0`. Privileged: only when
granted. Raises `HostError` (`denied`, `not-found`, `unsupported`, `failed`, `timeout`)."""

from typing import Optional

from wit_world.imports import traffic as _wit

from .errors import call


def status(container_id: str):
    return call(_wit.status, container_id)


def set_delay_loss(container_id: str, latency_ms: Optional[int], loss_percent: Optional[float]):
    return call(_wit.set_delay_loss, container_id, latency_ms, loss_percent)


def set_rate(container_id: str, rate_kbit: int):
    return call(_wit.set_rate, container_id, rate_kbit)


def clear(container_id: str):
    return call(_wit.clear, container_id)
