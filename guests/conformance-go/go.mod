module conformance-go

go 1.25

require scope-wasm/guest-sdk/go v0.0.0

require go.bytecodealliance.org/pkg v0.2.1 // indirect

replace scope-wasm/guest-sdk/go => ../../guest-sdk/go
