//! Host-side bindings generated from `wit/`: the single source of the contract.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: trappable },
    exports: { default: async },
});

pub use scope::plugin::types::*;
