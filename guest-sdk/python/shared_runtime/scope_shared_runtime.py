"""The shared Python runtime: one component that every Python plugin built
with `guest-sdk/build.sh python-shared` runs on.

A plugin file is this component with the plugin's own files appended, as a zip
archive in its `scope-plugin-source` custom section. The daemon compiles the
component without that section, so every such plugin shares one compiled
interpreter, mapped once, and its first-ever load is a cache hit. At the first
call the runtime reads the archive (`host.plugin-source`), imports its `app`
module from memory and hands every call to the `Handler` it exports
(`scope_plugin.export(...)`), exactly as a plugin built on its own would.

What the snapshot below does not import is not in the component: an app may
import the SDK, the standard library modules listed here, and its own files
(pure Python, vendored beside `app.py`).
"""

import sys
import traceback

import scope_plugin
import scope_plugin.docker
import scope_plugin.errors
import scope_plugin.host
import scope_plugin.http_traffic
import scope_plugin.ids
import scope_plugin.procfs
import scope_plugin.traffic
from wit_world.imports import host as _wit_host
from wit_world.imports.host import LogLevel

# The standard library a plugin may use, imported into the snapshot.
import abc  # noqa: F401
import base64  # noqa: F401
import bisect  # noqa: F401
import calendar  # noqa: F401
import collections  # noqa: F401
import collections.abc  # noqa: F401
import contextlib  # noqa: F401
import copy  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import encodings.cp437  # noqa: F401 (zipfile reads names in it)
import enum  # noqa: F401
import fnmatch  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import heapq  # noqa: F401
import io
import ipaddress  # noqa: F401
import itertools  # noqa: F401
import json  # noqa: F401
import math  # noqa: F401
import operator  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import shlex  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import struct  # noqa: F401
import textwrap  # noqa: F401
import time  # noqa: F401
import types
import typing  # noqa: F401
import uuid  # noqa: F401
import zipfile

APP = "app"


class _Archive:
    """Imports the plugin's modules from its archive, in memory (a meta path
    finder and loader: the files never touch a filesystem)."""

    def __init__(self, data: bytes):
        self.zip = zipfile.ZipFile(io.BytesIO(data))
        self.names = set(self.zip.namelist())

    def _file_of(self, fullname):
        base = fullname.replace(".", "/")
        if base + "/__init__.py" in self.names:
            return base + "/__init__.py", True
        if base + ".py" in self.names:
            return base + ".py", False
        return None, False

    def find_spec(self, fullname, path=None, target=None):
        import importlib.machinery

        file, package = self._file_of(fullname)
        if file is None:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=file, is_package=package)
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        file = module.__spec__.origin
        module.__file__ = file
        source = self.zip.read(file).decode("utf-8")
        exec(compile(source, file, "exec"), module.__dict__)


_handler = None
_failure = None
_archive = None


def _plugin():
    """The plugin's `Handler` object, its files imported at the first call. A
    failure to import them is kept and told at every call."""
    global _handler, _failure, _archive
    if _handler is None and _failure is None:
        try:
            data = bytes(_wit_host.plugin_source())
            if not data:
                raise RuntimeError(
                    "this is the shared Python runtime with no plugin attached: build a plugin with "
                    "`guest-sdk/build.sh python-shared DIR OUT.wasm`"
                )
            _archive = _Archive(data)
            names = _archive.names
            if APP + ".py" not in names:
                raise RuntimeError(f"the plugin's files have no {APP}.py (it has: {', '.join(sorted(names)) or 'nothing'})")
            sys.meta_path.insert(0, _archive)
            app = __import__(APP)
            handler = getattr(app, "Handler", None)
            if not isinstance(handler, type):
                raise RuntimeError(f"{APP}.py defines no `Handler` (write `Handler = scope_plugin.export(YourPlugin)`)")
            _handler = handler()
        except BaseException as error:
            _failure = _describe_failure(error, _archive.names if _archive else set())
    if _failure is not None:
        # Announced as a failure, so the daemon shows it as the call's cause.
        _wit_host.log(LogLevel.ERROR, f"aborted: the plugin's Python files did not load: {_failure}")
        raise RuntimeError(_failure)
    return _handler


def _describe_failure(error: BaseException, names) -> str:
    """The error and where in the plugin's files (`names`) it happened, in one line."""
    where = ""
    if isinstance(error, SyntaxError):
        where = f" ({error.filename}, line {error.lineno})"
    else:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename in names]
        if frames:
            where = f" ({frames[-1].filename}, line {frames[-1].lineno})"
    message = error.msg if isinstance(error, SyntaxError) else str(error)
    return f"{type(error).__name__}: {message}{where}"


class Handler:
    def describe(self):
        return _plugin().describe()

    def report(self):
        return _plugin().report()

    def control(self, request):
        return _plugin().control(request)
