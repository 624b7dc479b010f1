//! Write Weave Scope plugins as WebAssembly components for `scope-wasm`.
//!
//! Implement [`Plugin`] for a `Default` type and export it with [`export_plugin!`]:
//!
//! ```ignore
//! use scope_plugin::*;
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn describe(&self) -> PluginInfo {
//!         PluginInfo::new("Hello", "Says hello on the host node")
//!     }
//!     fn report(&mut self) -> Result<Report, String> {
//!         let node = Node::new(ids::this_host()).latest("greeting", "hello");
//!         Ok(Report::new().with(Topology::new(TopologyKind::Host).node(node)))
//!     }
//! }
//!
//! export_plugin!(Hello);
//! ```
//!
//! The host keeps one instance of the plugin alive between calls, so state kept in
//! `self` survives from one poll to the next (e.g. to compute rates). The host
//! writes the Scope JSON; a plugin never handles JSON or WIT plumbing.

mod builders;
pub mod docker;
pub mod host;
pub mod http_traffic;
pub mod ids;
pub mod procfs;
pub mod traffic;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_handler",
        default_bindings_module: "scope_plugin::bindings",
    });
}

pub use bindings::scope::plugin::host::LogLevel;
pub use bindings::scope::plugin::types::{
    Control, ControlError, ControlRequest, ControlResponse, LatestEntry, MetadataDataType,
    MetadataSource, MetadataTemplate, Metric, MetricFormat, MetricTemplate, Node, ParentSet,
    PluginInfo, Report, Sample, StringSet, TableColumn, TableTemplate, TableType, TimestampMs,
    Topology, TopologyKind,
};

/// A Scope plugin. One value of the type lives for the whole life of the instance.
pub trait Plugin: Default + 'static {
    /// Label and description shown in the UI's plugin list.
    fn describe(&self) -> PluginInfo;

    /// The report for this poll. An `Err` is shown as the plugin's status.
    fn report(&mut self) -> Result<Report, String>;

    /// A user clicked one of the plugin's controls.
    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {
        Err(ControlError::UnknownControl(request.control))
    }
}

/// Exports a [`Plugin`] type as the component's `handler`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct ScopePluginExport;

            ::std::thread_local! {
                static STATE: ::core::cell::RefCell<Option<$plugin>> =
                    const { ::core::cell::RefCell::new(None) };
            }

            fn with_plugin<R>(f: impl FnOnce(&mut $plugin) -> R) -> R {
                STATE.with_borrow_mut(|state| {
                    f(state.get_or_insert_with(<$plugin as ::core::default::Default>::default))
                })
            }

            impl $crate::bindings::exports::scope::plugin::handler::Guest for ScopePluginExport {
                fn describe() -> $crate::PluginInfo {
                    with_plugin(|p| $crate::Plugin::describe(p))
                }
                fn report() -> Result<$crate::Report, String> {
                    with_plugin(|p| $crate::Plugin::report(p))
                }
                fn control(
                    request: $crate::ControlRequest,
                ) -> Result<$crate::ControlResponse, $crate::ControlError> {
                    with_plugin(|p| $crate::Plugin::control(p, request))
                }
            }

            $crate::bindings::__export_handler!(ScopePluginExport with_types_in $crate::bindings);
        };
    };
}
