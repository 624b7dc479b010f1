"""The conformance plugin in Python: the same behaviour, byte for byte, as
guests/conformance-rust (see there)."""

import scope_plugin as scope
from scope_plugin import HostError, docker, ids, host, procfs
from scope_plugin import MetadataDataType, MetricFormat, TopologyKind


class Conformance(scope.Plugin):
    def __init__(self):
        self.count = 0

    def describe(self):
        return scope.plugin_info("Conformance (Python)", "The same plugin in every language: a counter, a reset control, typed errors")

    def render(self):
        # /proc/kcore is never readable: the typed error must come through.
        try:
            procfs.read("kcore")
            procfs_state = "ok"
        except HostError as error:
            procfs_state = "denied" if error.kind == "denied" else "other-error"
        # Docker is not granted to it: the typed `denied` must come through.
        try:
            docker.containers(False)
            docker_state = "ok"
        except HostError as error:
            docker_state = "denied" if error.kind == "denied" else "other-error"
        node = scope.node(
            ids.this_host(),
            latest={"conformance_count": str(self.count), "conformance_procfs": procfs_state, "conformance_docker": docker_state,
                    "conformance_greeting": host.setting("greeting", "unset")},
            metrics=[scope.metric("conformance_metric", [(host.now(), self.count)], min=0, max=1000)],
            sets={"conformance_set": ["alpha", "beta"]},
            active_controls=["reset", "fail"],
        )
        topology = scope.topology(
            TopologyKind.HOST,
            nodes=[node],
            controls=[
                scope.control("reset", "Reset the counter", "fa-undo", rank=1),
                scope.control("fail", "Fail on purpose", "fa-bomb", rank=2, confirmation="Really fail?"),
            ],
            metadata_templates=[scope.metadata_template("conformance_count", "Count", data_type=MetadataDataType.NUMBER, priority=1.0)],
            metric_templates=[scope.metric_template("conformance_metric", "Count metric", format=MetricFormat.INTEGER, priority=2.0)],
        )
        return scope.report(topology)

    def report(self):
        return self.render()

    def control(self, request):
        if request.node_id != ids.this_host():
            raise scope.UnknownNode(request.node_id)
        if request.control == "reset":
            self.count = 0
            host.info("conformance: reset")
        elif request.control == "add":
            n = dict(request.args).get("n", "")
            # Digits only, so every language accepts exactly the same strings.
            if not (0 < len(n) <= 9 and all("0" <= c <= "9" for c in n)):
                raise scope.InvalidArgument(f"n must be a whole number, got '{n}'")
            self.count += int(n)
        elif request.control == "fail":
            raise scope.ControlFailed("failing on purpose")
        elif request.control == "raise":
            # Not in the reference: an uncaught exception's status text
            # (tests/guest_errors.rs).
            what = dict(request.args).get("what", "")
            if what == "type-error":
                return self.count + "1"
            if what == "key-error":
                return {}["missing"]
            if what == "open-proc":
                with open("/proc/x") as file:
                    return file.read()
            if what == "host-error":
                docker.containers(False)
            raise scope.InvalidArgument(f"what must be type-error, key-error, open-proc or host-error, got '{what}'")
        else:
            raise scope.UnknownControl(request.control)
        return scope.shortcut(self.render())


Handler = scope.export(Conformance)
