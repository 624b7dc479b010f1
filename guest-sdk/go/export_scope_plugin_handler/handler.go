// Package export_scope_plugin_handler is the component's `handler` export, as
// the generated bindings expect it: it hands every call to the plugin that
// package scope holds.
package export_scope_plugin_handler

import (
	"wit_component/scope"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	types "wit_component/scope_plugin_types"
)

// Each call ends by letting the collector run if it is due: never inside
// cabi_realloc (see scope/gc.go).

func Describe() types.PluginInfo {
	defer scope.CollectIfDue()
	return scope.Exported().Describe()
}

func Report() witTypes.Result[types.Report, string] {
	defer scope.CollectIfDue()
	report, err := scope.Exported().Report()
	if err != nil {
		return witTypes.Err[types.Report, string](err.Error())
	}
	return witTypes.Ok[types.Report, string](report)
}

func Control(request types.ControlRequest) witTypes.Result[types.ControlResponse, types.ControlError] {
	defer scope.CollectIfDue()
	response, err := scope.Exported().Control(request)
	if err != nil {
		return witTypes.Err[types.ControlResponse, types.ControlError](scope.AsWit(err))
	}
	return witTypes.Ok[types.ControlResponse, types.ControlError](response)
}
