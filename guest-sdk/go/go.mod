// The Go SDK for scope-wasm plugins. Not served by a module proxy: a plugin's
// go.mod requires this path and points a `replace` at this directory.
module scope-wasm/guest-sdk/go

go 1.25

require go.bytecodealliance.org/pkg v0.2.1
