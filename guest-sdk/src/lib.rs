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
mod errors;
pub mod host;
pub mod http_traffic;
pub mod ids;
pub mod procfs;
pub mod traffic;

/// A panic in a plugin becomes its status: the hook sends `panicked at
/// FILE:LINE:COL: MESSAGE` to the host's log at error level, and the host puts
/// the last such message of the call into the trap's text (a panic aborts the
/// instance, so no error value could carry it). Installed by [`export_plugin!`].
#[doc(hidden)]
pub mod panic {
    /// Longest panic text sent; the rest is cut off (the status is one line).
    const MAX_TEXT: usize = 1024;

    pub fn install_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let payload = info.payload();
                let message = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(a panic without a message)");
                let text = match info.location() {
                    Some(at) => format!("panicked at {}:{}:{}: {message}", at.file(), at.line(), at.column()),
                    None => format!("panicked: {message}"),
                };
                crate::host::error(bounded(&text, MAX_TEXT));
            }));
        });
    }

    /// `text` cut to at most `max` bytes, between characters.
    pub fn bounded(text: &str, max: usize) -> &str {
        if text.len() <= max {
            return text;
        }
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    }
}

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

    /// The report for this poll. An `Err` is shown as the plugin's status;
    /// a capability's error converts with `?` into its sentence, e.g.
    /// `Docker Engine unavailable: /var/run/docker.sock does not exist`. A
    /// panic is shown too (`trapped: panicked at src/lib.rs:12:9: boom`), but
    /// it throws the instance and its state away.
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
                $crate::panic::install_hook();
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
