// Package export_scope_plugin_handler is the component's `handler` export, as
// the generated bindings expect it: it hands every call to the plugin that
// package scope holds.
package export_scope_plugin_handler

import (
	"scope-wasm/guest-sdk/go/scope"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	types "scope-wasm/guest-sdk/go/imports/scope_plugin_types"
)

// Each call ends by letting the collector run if it is due: never inside
// cabi_realloc (see scope/gc.go).

func Describe() types.PluginInfo {
	defer scope.CollectIfDue()
	return scope.Exported().Describe()
}

// A panic in Report or Control is that call's error, its value the status
// text ("panic: index out of range [3] with length 1"), instead of a trap that
// says only "unreachable". The plugin's state is what the panic left.

func Report() (result witTypes.Result[types.Report, string]) {
	defer scope.CollectIfDue()
	defer func() {
		if value := recover(); value != nil {
			result = witTypes.Err[types.Report, string](scope.PanicText(value))
		}
	}()
	report, err := scope.Exported().Report()
	if err != nil {
		return witTypes.Err[types.Report, string](err.Error())
	}
	return witTypes.Ok[types.Report, string](report)
}

func Control(request types.ControlRequest) (result witTypes.Result[types.ControlResponse, types.ControlError]) {
	defer scope.CollectIfDue()
	defer func() {
		if value := recover(); value != nil {
			result = witTypes.Err[types.ControlResponse, types.ControlError](types.MakeControlErrorFailed(scope.PanicText(value)))
		}
	}()
	response, err := scope.Exported().Control(request)
	if err != nil {
		return witTypes.Err[types.ControlResponse, types.ControlError](scope.AsWit(err))
	}
	return witTypes.Ok[types.ControlResponse, types.ControlError](response)
}
