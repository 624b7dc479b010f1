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
//	func main() {}
//
// with these imports: the SDK's scope and types packages, and the component's
// exports, which package main must link in:
//
//	import (
//		"scope-wasm/guest-sdk/go/scope"
//		types "scope-wasm/guest-sdk/go/imports/scope_plugin_types"
//		_ "scope-wasm/guest-sdk/go/exports/wit_exports"
//	)
//
// The records are the structs wit-bindgen generates from wit/ (package
// imports/scope_plugin_types); their zero values are the defaults
// (text, number, latest, no confirmation), so struct literals read as the
// report. Errors are Go errors: a Report error becomes the plugin's status, a
// Control error should be one of UnknownControl, UnknownNode, InvalidArgument
// or Failed. Host capabilities return *HostError.
package scope

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	host "scope-wasm/guest-sdk/go/imports/scope_plugin_host"
	procfsWit "scope-wasm/guest-sdk/go/imports/scope_plugin_procfs"
	types "scope-wasm/guest-sdk/go/imports/scope_plugin_types"
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
// ("denied", "not-found", ...), Message the host's text, Capability which
// capability ("docker", "procfs", ...). Error() is the sentence shown as the
// plugin's status, e.g. "Docker Engine unavailable: /var/run/docker.sock does
// not exist".
type HostError struct {
	Kind       string
	Message    string
	Capability string
}

func (e *HostError) Error() string {
	if e.Capability == "" {
		if e.Message == "" {
			return e.Kind
		}
		return e.Kind + ": " + e.Message
	}
	return DescribeHostError(e.Capability, e.Kind, e.Message)
}

// What each capability is called in a sentence.
var capabilityNames = map[string]string{
	"docker": "Docker", "procfs": "procfs", "traffic": "traffic shaping", "http-traffic": "HTTP traffic counters",
}

// The sentence per capability and kind; "%s" is the host's message.
var sentences = map[string]string{
	"docker/unavailable":       "Docker Engine unavailable: %s",
	"docker/timeout":           "Docker Engine did not answer within the call's time budget",
	"docker/not-found":         "Docker object not found: %s",
	"docker/failed":            "Docker Engine error: %s",
	"procfs/not-found":         "procfs: %s does not exist (no such file, or the process has exited)",
	"procfs/too-large":         "procfs: the file is larger than the host's limit of %s bytes",
	"procfs/io":                "procfs read failed: %s",
	"traffic/not-found":        "traffic shaping: container not found: %s",
	"traffic/unsupported":      "traffic shaping is not supported on this host: %s",
	"traffic/failed":           "traffic shaping failed: %s",
	"traffic/timeout":          "traffic shaping did not finish within the call's time budget",
	"http-traffic/unavailable": "HTTP traffic counters unavailable on this host: %s",
	"http-traffic/timeout":     "HTTP traffic counters did not answer within the call's time budget",
}

// DescribeHostError is a capability error as a sentence: the capability, the
// cause and, where there is one, the fix (the same words as the Rust SDK).
func DescribeHostError(capability, kind, message string) string {
	what, ok := capabilityNames[capability]
	if !ok {
		what = capability
	}
	if kind == "denied" {
		notGranted := capability + " is not granted"
		// The host's text names the plugin, which the status already starts with.
		if head, rest, found := strings.Cut(message, ": "); found && strings.HasPrefix(head, "plugin ") && strings.HasPrefix(rest, notGranted) {
			message = rest
		}
		if strings.HasPrefix(message, notGranted) {
			return fmt.Sprintf("%s denied: %s is not granted to this plugin (add %q to its grants in the config)", what, capability, capability)
		}
		return what + " denied: " + message
	}
	sentence, ok := sentences[capability+"/"+kind]
	if !ok {
		if message == "" {
			return fmt.Sprintf("%s error (%s)", what, kind)
		}
		return fmt.Sprintf("%s error (%s): %s", what, kind, message)
	}
	if strings.Contains(sentence, "%s") {
		return fmt.Sprintf(sentence, message)
	}
	return sentence
}

// MaxStatus is the longest status text a panic makes; the rest is cut off.
const MaxStatus = 1024

// PanicText is a recovered panic as the plugin's status: "panic: VALUE",
// bounded. The handler export recovers every call's panic into it, so a
// panicking plugin fails that call, and says why, instead of trapping.
func PanicText(value any) string {
	var text string
	if err, ok := value.(error); ok {
		text = "panic: " + err.Error()
	} else {
		text = fmt.Sprintf("panic: %v", value)
	}
	if len(text) > MaxStatus {
		cut := MaxStatus - 3
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "..."
	}
	return text
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

// Setting is one of the operator's settings for this plugin (the `settings`
// table of its config section), and whether the operator set it.
func Setting(key string) (string, bool) {
	value := host.Setting(key)
	if value.IsNone() {
		return "", false
	}
	return value.Some(), true
}

// SettingOr is the setting `key`, or `fallback` when it is not set.
func SettingOr(key, fallback string) string {
	if value, ok := Setting(key); ok {
		return value
	}
	return fallback
}

// Settings are all of the operator's settings for this plugin, by key.
func Settings() map[string]string {
	all := map[string]string{}
	for _, pair := range host.Settings() {
		all[pair.F0] = pair.F1
	}
	return all
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
		return "", &HostError{"not-found", failure.NotFound(), "procfs"}
	case procfsWit.ProcfsError_Denied:
		return "", &HostError{"denied", failure.Denied(), "procfs"}
	case procfsWit.ProcfsError_TooLarge:
		return "", &HostError{"too-large", fmt.Sprint(failure.TooLarge()), "procfs"}
	default:
		return "", &HostError{"io", failure.Io(), "procfs"}
	}
}
