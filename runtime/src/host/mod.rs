//! Host capabilities offered to guests: one module per WIT interface, each with
//! its own context type. `add_to_linker` is the one place that lists them all.

pub mod host_info;

use anyhow::Result;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::scope::plugin::{host, types};
use crate::state::PluginState;

pub fn add_to_linker(linker: &mut Linker<PluginState>) -> Result<()> {
    // WASI p2 with nothing granted (see `state::sandboxed_wasi`): guests built by
    // standard toolchains import it even when they use none of it.
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    types::add_to_linker::<_, HasSelf<host_info::HostInfo>>(linker, |s| &mut s.host_info)?;
    host::add_to_linker::<_, HasSelf<host_info::HostInfo>>(linker, |s| &mut s.host_info)?;
    Ok(())
}
