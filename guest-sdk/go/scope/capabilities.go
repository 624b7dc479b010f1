package scope

import (
	dockerWit "scope-wasm/guest-sdk/go/imports/scope_plugin_docker"
	httpWit "scope-wasm/guest-sdk/go/imports/scope_plugin_http_traffic"
	trafficWit "scope-wasm/guest-sdk/go/imports/scope_plugin_traffic"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// The capabilities beyond host and procfs, each call returning a *HostError
// whose Kind is the WIT case. Granted per plugin by the operator; a call
// without the grant returns Kind "denied". (A capability a plugin never calls
// is not imported by its component.)

// Containers lists containers (running ones only unless all).
func Containers(all bool) ([]dockerWit.ContainerSummary, error) {
	return fromDocker(dockerWit.ListContainers(all))
}

// InspectContainer is one container's details.
func InspectContainer(id string) (dockerWit.ContainerDetails, error) {
	return fromDocker(dockerWit.InspectContainer(id))
}

// Images lists the images.
func Images() ([]dockerWit.Image, error) { return fromDocker(dockerWit.ListImages()) }

// DockerGet is the Engine's JSON for an allow-listed read-only path.
func DockerGet(path string) (string, error) { return fromDocker(dockerWit.Get(path)) }

func fromDocker[T any](result witTypes.Result[T, dockerWit.DockerError]) (T, error) {
	if result.IsOk() {
		return result.Ok(), nil
	}
	var zero T
	failure := result.Err()
	switch failure.Tag() {
	case dockerWit.DockerError_Unavailable:
		return zero, &HostError{"unavailable", failure.Unavailable(), "docker"}
	case dockerWit.DockerError_Timeout:
		return zero, &HostError{"timeout", "", "docker"}
	case dockerWit.DockerError_NotFound:
		return zero, &HostError{"not-found", failure.NotFound(), "docker"}
	case dockerWit.DockerError_Denied:
		return zero, &HostError{"denied", failure.Denied(), "docker"}
	default:
		return zero, &HostError{"failed", failure.Failed(), "docker"}
	}
}

// TrafficStatus is what is installed on a container's eth0.
func TrafficStatus(containerID string) (trafficWit.Shaping, error) {
	return fromTraffic(trafficWit.Status(containerID))
}

// SetRate limits a container's eth0 (token bucket filter).
func SetRate(containerID string, rateKbit uint64) (trafficWit.Shaping, error) {
	return fromTraffic(trafficWit.SetRate(containerID, rateKbit))
}

// ClearTraffic puts a container's eth0 back to the kernel's default.
func ClearTraffic(containerID string) (trafficWit.Shaping, error) {
	return fromTraffic(trafficWit.Clear(containerID))
}

func fromTraffic(result witTypes.Result[trafficWit.Shaping, trafficWit.TrafficError]) (trafficWit.Shaping, error) {
	if result.IsOk() {
		return result.Ok(), nil
	}
	failure := result.Err()
	switch failure.Tag() {
	case trafficWit.TrafficError_Denied:
		return trafficWit.Shaping{}, &HostError{"denied", failure.Denied(), "traffic"}
	case trafficWit.TrafficError_NotFound:
		return trafficWit.Shaping{}, &HostError{"not-found", failure.NotFound(), "traffic"}
	case trafficWit.TrafficError_Unsupported:
		return trafficWit.Shaping{}, &HostError{"unsupported", failure.Unsupported(), "traffic"}
	case trafficWit.TrafficError_Timeout:
		return trafficWit.Shaping{}, &HostError{"timeout", "", "traffic"}
	default:
		return trafficWit.Shaping{}, &HostError{"failed", failure.Failed(), "traffic"}
	}
}

// HTTPCounters is every live process's HTTP counters (they only grow).
func HTTPCounters() ([]httpWit.ProcessCounters, error) {
	result := httpWit.Counters()
	if result.IsOk() {
		return result.Ok(), nil
	}
	failure := result.Err()
	switch failure.Tag() {
	case httpWit.HttpTrafficError_Denied:
		return nil, &HostError{"denied", failure.Denied(), "http-traffic"}
	case httpWit.HttpTrafficError_Unavailable:
		return nil, &HostError{"unavailable", failure.Unavailable(), "http-traffic"}
	default:
		return nil, &HostError{"timeout", "", "http-traffic"}
	}
}
