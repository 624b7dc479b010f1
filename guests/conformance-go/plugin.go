// The conformance plugin in Go: the same behaviour, byte for byte, as
// guests/conformance-rust (see there).
package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"scope-wasm/guest-sdk/go/scope"
	types "scope-wasm/guest-sdk/go/imports/scope_plugin_types"

	_ "scope-wasm/guest-sdk/go/exports/wit_exports"
)

type conformance struct {
	count uint64
}

func (c *conformance) Describe() types.PluginInfo {
	return types.PluginInfo{
		Label:       "Conformance (Go)",
		Description: "The same plugin in every language: a counter, a reset control, typed errors",
	}
}

func (c *conformance) render() types.Report {
	// /proc/kcore is never readable: the typed error must come through.
	procfs := "ok"
	if _, err := scope.ReadProc("kcore"); err != nil {
		var hostErr *scope.HostError
		if errors.As(err, &hostErr) && hostErr.Kind == "denied" {
			procfs = "denied"
		} else {
			procfs = "other-error"
		}
	}
	// Docker is not granted to it: the typed `denied` must come through.
	docker := "ok"
	if _, err := scope.Containers(false); err != nil {
		var hostErr *scope.HostError
		if errors.As(err, &hostErr) && hostErr.Kind == "denied" {
			docker = "denied"
		} else {
			docker = "other-error"
		}
	}
	node := types.Node{
		Id: scope.ThisHost(),
		Latest: []types.LatestEntry{
			scope.Latest("conformance_count", strconv.FormatUint(c.count, 10)),
			scope.Latest("conformance_procfs", procfs),
			scope.Latest("conformance_docker", docker),
			scope.Latest("conformance_greeting", scope.SettingOr("greeting", "unset")),
		},
		Metrics: []types.Metric{{
			Key: "conformance_metric", Min: 0, Max: 1000,
			Samples: []types.Sample{scope.Sample(scope.Now(), float64(c.count))},
		}},
		Sets:           []types.StringSet{scope.Set("conformance_set", "alpha", "beta")},
		ActiveControls: []string{"reset", "fail"},
	}
	return scope.NewReport(types.Topology{
		Kind:  types.TopologyKind_Host,
		Nodes: []types.Node{node},
		Controls: []types.Control{
			{Id: "reset", Human: "Reset the counter", Icon: "fa-undo", Rank: 1},
			{Id: "fail", Human: "Fail on purpose", Icon: "fa-bomb", Rank: 2, Confirmation: scope.Confirm("Really fail?")},
		},
		MetadataTemplates: []types.MetadataTemplate{
			{Id: "conformance_count", Label: "Count", DataType: types.MetadataDataType_Number, Priority: 1.0},
		},
		MetricTemplates: []types.MetricTemplate{
			{Id: "conformance_metric", Label: "Count metric", Format: types.MetricFormat_Integer, Priority: 2.0},
		},
	})
}

func (c *conformance) Report() (types.Report, error) {
	return c.render(), nil
}

// Digits only, so every language accepts exactly the same strings.
var wholeNumber = regexp.MustCompile(`^[0-9]{1,9}$`)

func (c *conformance) Control(request types.ControlRequest) (types.ControlResponse, error) {
	if request.NodeId != scope.ThisHost() {
		return types.ControlResponse{}, scope.UnknownNode(request.NodeId)
	}
	switch request.Control {
	case "reset":
		c.count = 0
		scope.Info("conformance: reset")
	case "add":
		n, _ := scope.Arg(request, "n")
		if !wholeNumber.MatchString(n) {
			return types.ControlResponse{}, scope.InvalidArgument(fmt.Sprintf("n must be a whole number, got '%s'", n))
		}
		value, _ := strconv.ParseUint(n, 10, 64)
		c.count += value
	case "fail":
		return types.ControlResponse{}, scope.Failed("failing on purpose")
	case "panic":
		// Not in the reference: a panic's status text (tests/guest_errors.rs).
		var counts []uint64
		c.count += counts[c.count+3]
	default:
		return types.ControlResponse{}, scope.UnknownControl(request.Control)
	}
	return scope.Shortcut(c.render()), nil
}

func init() { scope.Export(&conformance{}) }

func main() {}


