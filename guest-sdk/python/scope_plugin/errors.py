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


class HostError(Exception):
    """A host capability's typed error: `kind` is the WIT case (`denied`,
    `not-found`, `timeout`, ...), `message` its text (empty if it has none)."""

    def __init__(self, kind: str, message: str = ""):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message

    @classmethod
    def from_wit(cls, value) -> "HostError":
        # `ProcfsError_NotFound(value='...')` is kind `not-found`.
        case = type(value).__name__.split("_", 1)[-1]
        kind = re.sub(r"(?<!^)(?=[A-Z])", "-", case).lower()
        return cls(kind, str(getattr(value, "value", "") or ""))


def call(function, *args):
    """Calls a capability import, raising its error as `HostError`."""
    try:
        return function(*args)
    except Err as error:
        raise HostError.from_wit(error.value) from None
