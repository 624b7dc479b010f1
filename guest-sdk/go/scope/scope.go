// Package scope writes Weave Scope plugins in Go, as WebAssembly components
// for scope-wasm.
//
// A plugin is a Plugin value registered with Export from an init function of
// package main:
//
//	type hello struct{}
//
//	func (hello) Describe() types.PluginInfo {
//		return types.PluginInfo{Label: "Hello", Description: "Says hello on the host node"}
//	}
//
//	func (hello) Report() (types.Report, error) {
//		node := types.Node{Id: scope.ThisHost(), Latest: []types.LatestEntry{scope.Latest("greeting", "hello")}}
//		return scope.NewReport(types.Topology{Kind: types.TopologyKind_Host, Nodes: []types.Node{node}}), nil
//	}
//
//	func (hello) Control(request types.ControlRequest) (types.ControlResponse, error) {
//		return types.ControlResponse{}, scope.UnknownControl(request.Control)
//	}
//
//	func init() { scope.Export(hello{}) }
//
// (The generated bindings hold func main.)
//
// The records are the structs wit-bindgen generates from wit/ (package
// wit_component/scope_plugin_types); their zero values are the defaults
// (text, number, latest, no confirmation), so struct literals read as the
// report. Errors are Go errors: a Report error becomes the plugin's status, a
// Control error should be one of UnknownControl, UnknownNode, InvalidArgument
// or Failed. Host capabilities return *HostError.
package scope

import (
	"errors"
	"fmt"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	host "wit_component/scope_plugin_host"
	procfsWit "wit_component/scope_plugin_procfs"
	types "wit_component/scope_plugin_types"
)

// Plugin is what a scope-wasm plugin implements. One value lives as long as
// the instance, so its fields keep state from one poll to the next.
type Plugin interface {
	Describe() types.PluginInfo
	Report() (types.Report, error)
	Control(request types.ControlRequest) (types.ControlResponse, error)
}

var exported Plugin

// Export makes p the component's handler. Call it from an init function.
func Export(p Plugin) { exported = p }

// Exported is the registered plugin (for the handler export).
func Exported() Plugin {
	if exported == nil {
		panic("no plugin: call scope.Export from an init function of package main")
	}
	return exported
}

// ControlError is a control's typed error.
type ControlError struct {
	Kind    uint8 // types.ControlError_UnknownControl, ...
	Message string
}

func (e *ControlError) Error() string { return e.Message }

func UnknownControl(message string) error {
	return &ControlError{types.ControlError_UnknownControl, message}
}
func UnknownNode(message string) error { return &ControlError{types.ControlError_UnknownNode, message} }
func InvalidArgument(message string) error {
	return &ControlError{types.ControlError_InvalidArgument, message}
}
func Failed(message string) error { return &ControlError{types.ControlError_Failed, message} }

// AsWit turns any error from Control into the WIT control-error.
func AsWit(err error) types.ControlError {
	var typed *ControlError
	if !errors.As(err, &typed) {
		return types.MakeControlErrorFailed(err.Error())
	}
	switch typed.Kind {
	case types.ControlError_UnknownControl:
		return types.MakeControlErrorUnknownControl(typed.Message)
	case types.ControlError_UnknownNode:
		return types.MakeControlErrorUnknownNode(typed.Message)
	case types.ControlError_InvalidArgument:
		return types.MakeControlErrorInvalidArgument(typed.Message)
	default:
		return types.MakeControlErrorFailed(typed.Message)
	}
}

// HostError is a host capability's typed error: Kind is the WIT case
// ("denied", "not-found", ...), Message its text.
type HostError struct {
	Kind    string
	Message string
}

func (e *HostError) Error() string {
	if e.Message == "" {
		return e.Kind
	}
	return e.Kind + ": " + e.Message
}

// NewReport is a report of these topologies.
func NewReport(topologies ...types.Topology) types.Report {
	return types.Report{Topologies: topologies}
}

// Latest is a value observed now (the report's time).
func Latest(key, value string) types.LatestEntry {
	return types.LatestEntry{Key: key, Value: value}
}

// Sample is one point of a metric.
func Sample(timestampMs uint64, value float64) types.Sample {
	return types.Sample{Timestamp: timestampMs, Value: value}
}

// Set is a named set of strings.
func Set(key string, values ...string) types.StringSet {
	return types.StringSet{Key: key, Values: values}
}

// Confirm is a control's confirmation text.
func Confirm(text string) witTypes.Option[string] { return witTypes.Some(text) }

// Shortcut is a control's answer that the probe merges at once.
func Shortcut(report types.Report) types.ControlResponse {
	return types.ControlResponse{ShortcutReport: witTypes.Some(report)}
}

// Arg is a control argument's value, and whether it was given.
func Arg(request types.ControlRequest, key string) (string, bool) {
	for _, arg := range request.Args {
		if arg.F0 == key {
			return arg.F1, true
		}
	}
	return "", false
}

// Hostname is the host's name as the probe uses it in node IDs.
func Hostname() string { return host.Hostname() }

// ThisHost is this host's node ID, "<hostname>;<host>".
func ThisHost() string { return host.Hostname() + ";<host>" }

// ContainerNode is a container's node ID.
func ContainerNode(id string) string { return id + ";<container>" }

// ProcessNode is a process's node ID.
func ProcessNode(hostname string, pid uint32) string { return fmt.Sprintf("%s;%d", hostname, pid) }

// Now is the time in milliseconds since the Unix epoch.
func Now() uint64 { return host.Now() }

// Log writes to the daemon's log, tagged with the plugin's ID.
func Log(level host.LogLevel, format string, args ...any) { host.Log(level, fmt.Sprintf(format, args...)) }

func Info(format string, args ...any) { Log(host.LogLevel_Info, format, args...) }
func Warn(format string, args ...any) { Log(host.LogLevel_Warn, format, args...) }

// ReadProc reads a file relative to /proc ("stat", "1234/status"); errors are
// *HostError with Kind "denied", "not-found", "too-large" or "io".
func ReadProc(path string) (string, error) {
	result := procfsWit.Read(path)
	if result.IsOk() {
		return result.Ok(), nil
	}
	failure := result.Err()
	switch failure.Tag() {
	case procfsWit.ProcfsError_NotFound:
		return "", &HostError{"not-found", failure.NotFound()}
	case procfsWit.ProcfsError_Denied:
		return "", &HostError{"denied", failure.Denied()}
	case procfsWit.ProcfsError_TooLarge:
		return "", &HostError{"too-large", fmt.Sprint(failure.TooLarge())}
	default:
		return "", &HostError{"io", failure.Io()}
	}
}
