"""The exceptions of the SDK: a control's typed errors, and a host capability's."""

import re

from componentize_py_types import Err
from wit_world.imports import types


class _ControlError(Exception):
    case = None

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def as_wit(self):
        return self.case(self.message)


class UnknownControl(_ControlError):
    case = types.ControlError_UnknownControl


class UnknownNode(_ControlError):
    case = types.ControlError_UnknownNode


class InvalidArgument(_ControlError):
    case = types.ControlError_InvalidArgument


class ControlFailed(_ControlError):
    case = types.ControlError_Failed


# What each capability is called in a sentence, by the WIT error type's prefix.
_CAPABILITIES = {
    "DockerError": ("docker", "Docker"),
    "ProcfsError": ("procfs", "procfs"),
    "TrafficError": ("traffic", "traffic shaping"),
    "HttpTrafficError": ("http-traffic", "HTTP traffic counters"),
}

# The sentence per (capability, kind); `{m}` is the host's message.
_SENTENCES = {
    ("docker", "unavailable"): "Docker Engine unavailable: {m}",
    ("docker", "timeout"): "Docker Engine did not answer within the call's time budget",
    ("docker", "not-found"): "Docker object not found: {m}",
    ("docker", "failed"): "Docker Engine error: {m}",
    ("procfs", "not-found"): "procfs: {m} does not exist (no such file, or the process has exited)",
    ("procfs", "too-large"): "procfs: the file is larger than the host's limit of {m} bytes",
    ("procfs", "io"): "procfs read failed: {m}",
    ("traffic", "not-found"): "traffic shaping: container not found: {m}",
    ("traffic", "unsupported"): "traffic shaping is not supported on this host: {m}",
    ("traffic", "failed"): "traffic shaping failed: {m}",
    ("traffic", "timeout"): "traffic shaping did not finish within the call's time budget",
    ("http-traffic", "unavailable"): "HTTP traffic counters unavailable on this host: {m}",
    ("http-traffic", "timeout"): "HTTP traffic counters did not answer within the call's time budget",
}


def describe(capability: str, kind: str, message: str) -> str:
    """A capability error as a sentence: the capability, the cause and, where
    there is one, the fix (the same words as the Rust SDK)."""
    what = next((w for c, w in _CAPABILITIES.values() if c == capability), capability)
    if kind == "denied":
        not_granted = f"{capability} is not granted"
        # The host's text names the plugin, which the status already starts with.
        head, sep, rest = message.partition(": ")
        if sep and head.startswith("plugin ") and rest.startswith(not_granted):
            message = rest
        if message.startswith(not_granted):
            return f'{what} denied: {capability} is not granted to this plugin (add "{capability}" to its grants in the config)'
        return f"{what} denied: {message}"
    sentence = _SENTENCES.get((capability, kind))
    if sentence is None:
        return f"{what} error ({kind}): {message}" if message else f"{what} error ({kind})"
    return sentence.format(m=message)


class HostError(Exception):
    """A host capability's typed error: `kind` is the WIT case (`denied`,
    `not-found`, `timeout`, ...), `message` its text (empty if it has none),
    `capability` the capability (`docker`, `procfs`, ...). `str()` is the
    sentence shown as the plugin's status, e.g. `Docker Engine unavailable:
    /var/run/docker.sock does not exist`."""

    def __init__(self, kind: str, message: str = "", capability: str = ""):
        super().__init__(describe(capability, kind, message) if capability else (f"{kind}: {message}" if message else kind))
        self.kind = kind
        self.message = message
        self.capability = capability

    @classmethod
    def from_wit(cls, value) -> "HostError":
        # `ProcfsError_NotFound(value='...')` is kind `not-found` of `procfs`.
        prefix, _, case = type(value).__name__.partition("_")
        kind = re.sub(r"(?<!^)(?=[A-Z])", "-", case or prefix).lower()
        capability = _CAPABILITIES.get(prefix, ("", ""))[0]
        payload = getattr(value, "value", "")
        return cls(kind, "" if payload is None else str(payload), capability)


def call(function, *args):
    """Calls a capability import, raising its error as `HostError`."""
    try:
        return function(*args)
    except Err as error:
        raise HostError.from_wit(error.value) from None


# Longest status text a failure makes; the rest is cut off.
MAX_STATUS = 1024

# Exceptions whose text is the whole story: no type name in front.
_PLAIN = (HostError, _ControlError)


def status_text(error: BaseException) -> str:
    """An uncaught exception as the plugin's status: `TypeError: message`
    (`KeyError: 'missing'`), a capability's sentence as it is, and for a /proc
    path that `open()` could not open, the way that works."""
    message = str(error)
    if isinstance(error, _PLAIN) or type(error) is Exception:
        text = message or type(error).__name__
    else:
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    filename = getattr(error, "filename", None)
    if isinstance(error, OSError) and isinstance(filename, str) and (filename == "/proc" or filename.startswith("/proc/")):
        text += " (plugins cannot open /proc directly: read /proc through scope_plugin.procfs, e.g. procfs.read('stat'))"
    return text if len(text) <= MAX_STATUS else text[: MAX_STATUS - 3] + "..."
