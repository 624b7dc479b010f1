package scope

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// Go's collector must never start inside `cabi_realloc`, where the host lends
// memory for a call's arguments: it reads the clock, and a component may not
// call an import there, so the instance would trap ("cannot leave component
// instance") after some thousands of calls. So automatic collection is off,
// and the handler export collects at the end of a call, where imports are
// allowed, once enough has been allocated since the last collection: the heap
// stays within about `collectEvery` of what is live.
const collectEvery = 4 << 20

var (
	allocated   = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	collectedAt uint64
)

func init() {
	debug.SetGCPercent(-1)
	runtime.MemProfileRate = 0
}

// CollectIfDue runs the collector if enough was allocated since it last ran.
// The handler export calls it after every call.
func CollectIfDue() {
	metrics.Read(allocated)
	if now := allocated[0].Value.Uint64(); now-collectedAt >= collectEvery {
		runtime.GC()
		collectedAt = now
	}
}
