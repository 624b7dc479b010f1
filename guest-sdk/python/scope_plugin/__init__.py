"""Write Weave Scope plugins in Python, as WebAssembly components for scope-wasm.

Subclass `Plugin`, then export it from your app module as the component's
`handler`::

    import scope_plugin as scope
    from scope_plugin import ids, host

    class Hello(scope.Plugin):
        def describe(self):
            return scope.plugin_info("Hello", "Says hello on the host node")

        def report(self):
            node = scope.node(ids.this_host(), latest={"greeting": "hello"})
            return scope.report(scope.topology(scope.TopologyKind.HOST, nodes=[node]))

    Handler = scope.export(Hello)

Build with `componentize-py -d wit -w plugin componentize app -p . -p <sdk> -o hello.wasm`.
The records are the ones `componentize-py` generates from `wit/` (module
`wit_world.imports.types`); the functions here only fill in their defaults.
The host writes the JSON: a plugin never handles JSON.

Errors are exceptions: raise anything from `report` and it becomes the
plugin's status, as `TypeError: message` (a `HostError` or a plain `Exception`:
its message alone); raise `UnknownControl`, `UnknownNode`, `InvalidArgument` or
`ControlFailed` from `control`. Host capabilities raise `HostError`.
"""

from typing import Iterable, Mapping, Optional, Sequence, Tuple

from componentize_py_types import Err
from wit_world.imports import types
from wit_world.imports.types import (
    Control,
    ControlRequest,
    ControlResponse,
    LatestEntry,
    MetadataDataType,
    MetadataSource,
    MetadataTemplate,
    Metric,
    MetricFormat,
    MetricTemplate,
    Node,
    ParentSet,
    PluginInfo,
    Report,
    Sample,
    StringSet,
    TableColumn,
    TableTemplate,
    TableType,
    Topology,
    TopologyKind,
)

from .errors import ControlFailed, HostError, InvalidArgument, UnknownControl, UnknownNode, status_text

__all__ = [
    "Plugin", "export", "plugin_info", "report", "topology", "node", "metric", "control",
    "metadata_template", "metric_template", "property_list", "multicolumn_table", "HostError",
    "UnknownControl", "UnknownNode", "InvalidArgument", "ControlFailed", "Control",
    "ControlRequest", "ControlResponse", "LatestEntry", "MetadataDataType", "MetadataSource",
    "MetadataTemplate", "Metric", "MetricFormat", "MetricTemplate", "Node", "ParentSet",
    "PluginInfo", "Report", "Sample", "StringSet", "TableColumn", "TableTemplate", "TableType",
    "Topology", "TopologyKind",
]


class Plugin:
    """A Scope plugin. One object lives as long as the instance, so attributes
    keep state from one poll to the next (to compute rates, say)."""

    def describe(self) -> PluginInfo:
        raise NotImplementedError

    def report(self) -> Report:
        raise NotImplementedError

    def control(self, request: ControlRequest) -> ControlResponse:
        raise UnknownControl(request.control)


def export(plugin_class):
    """The `Handler` class componentize-py exports, running one `plugin_class` object."""
    plugin = plugin_class()

    class Handler:
        def describe(self) -> PluginInfo:
            return plugin.describe()

        def report(self) -> Report:
            try:
                result = plugin.report()
                if not isinstance(result, Report):
                    raise TypeError(f"report() must return a Report (scope.report(...)), not {type(result).__name__}")
                return result
            except Err:
                raise
            except Exception as error:
                raise Err(status_text(error))

        def control(self, request: ControlRequest) -> ControlResponse:
            try:
                result = plugin.control(request)
                if not isinstance(result, ControlResponse):
                    raise TypeError(f"control() must return a ControlResponse (scope.shortcut(...) or scope.done()), not {type(result).__name__}")
                return result
            except (UnknownControl, UnknownNode, InvalidArgument, ControlFailed) as error:
                raise Err(error.as_wit())
            except Err:
                raise
            except Exception as error:
                raise Err(types.ControlError_Failed(status_text(error)))

    return Handler


def plugin_info(label: str, description: str) -> PluginInfo:
    return PluginInfo(label=label, description=description)


def report(*topologies: Topology) -> Report:
    return Report(topologies=list(topologies))


def topology(
    kind: TopologyKind,
    *,
    nodes: Sequence[Node] = (),
    controls: Sequence[Control] = (),
    metadata_templates: Sequence[MetadataTemplate] = (),
    metric_templates: Sequence[MetricTemplate] = (),
    table_templates: Sequence[TableTemplate] = (),
) -> Topology:
    return Topology(
        kind=kind,
        nodes=list(nodes),
        controls=list(controls),
        metadata_templates=list(metadata_templates),
        metric_templates=list(metric_templates),
        table_templates=list(table_templates),
    )


def node(
    id: str,
    *,
    latest: Mapping[str, str] = {},
    metrics: Sequence[Metric] = (),
    sets: Mapping[str, Sequence[str]] = {},
    parents: Mapping[TopologyKind, Sequence[str]] = {},
    active_controls: Sequence[str] = (),
) -> Node:
    """A node; `latest` values are observed now (the report's time)."""
    return Node(
        id=id,
        latest=[LatestEntry(key=k, value=v, timestamp=None) for k, v in latest.items()],
        metrics=list(metrics),
        sets=[StringSet(key=k, values=list(v)) for k, v in sets.items()],
        parents=[ParentSet(topology=t, ids=list(i)) for t, i in parents.items()],
        active_controls=list(active_controls),
    )


def metric(key: str, samples: Iterable[Tuple[int, float]] = (), *, min: float, max: float) -> Metric:
    """A time series of (timestamp in ms, value), drawn between `min` and `max`."""
    return Metric(key=key, samples=[Sample(timestamp=t, value=float(v)) for t, v in samples], min=float(min), max=float(max))


def control(id: str, human: str, icon: str, *, rank: int = 0, confirmation: Optional[str] = None) -> Control:
    return Control(id=id, human=human, icon=icon, confirmation=confirmation, rank=rank)


def metadata_template(
    id: str,
    label: str,
    *,
    priority: float = 0.0,
    data_type: MetadataDataType = MetadataDataType.TEXT,
    from_: MetadataSource = MetadataSource.LATEST,
    truncate: int = 0,
) -> MetadataTemplate:
    """A row of the node's details, from the `latest` entry `id`."""
    return MetadataTemplate(id=id, label=label, truncate=truncate, data_type=data_type, priority=float(priority), from_=from_)


def metric_template(
    id: str, label: str, *, format: MetricFormat = MetricFormat.NUMBER, group: str = "", priority: float = 0.0
) -> MetricTemplate:
    return MetricTemplate(id=id, label=label, format=format, group=group, priority=float(priority))


def property_list(id: str, label: str, prefix: str, *, fixed_rows: Sequence[Tuple[str, str]] = ()) -> TableTemplate:
    """Key/value rows from the `latest` entries that start with `prefix`."""
    return TableTemplate(id=id, label=label, prefix=prefix, type=TableType.PROPERTY_LIST, columns=[], fixed_rows=list(fixed_rows))


def multicolumn_table(
    id: str, label: str, prefix: str, *, columns: Sequence[Tuple[str, str]] = (), fixed_rows: Sequence[Tuple[str, str]] = ()
) -> TableTemplate:
    """Rows and columns from the `latest` entries `<prefix><row>___<column>`."""
    return TableTemplate(
        id=id,
        label=label,
        prefix=prefix,
        type=TableType.MULTICOLUMN_TABLE,
        columns=[TableColumn(id=c, label=l, data_type=MetadataDataType.TEXT) for c, l in columns],
        fixed_rows=list(fixed_rows),
    )


def shortcut(report: Report) -> ControlResponse:
    """A control's answer that the probe merges at once."""
    return ControlResponse(shortcut_report=report)


def done() -> ControlResponse:
    return ControlResponse(shortcut_report=None)
