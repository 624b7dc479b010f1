//! Host-side bindings generated from `wit/`: the single source of the contract.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: {
        // These reach outside the process (files, the Docker socket): async, so
        // they can be bounded by the call's deadline, which epochs cannot do
        // for host code.
        "scope:plugin/procfs": async | trappable,
        "scope:plugin/docker": async | trappable,
        "scope:plugin/traffic": async | trappable,
        "scope:plugin/http-traffic": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    // A report equal to the previous one is not checked and rendered again.
    additional_derives: [PartialEq],
});

pub use scope::plugin::types::*;
