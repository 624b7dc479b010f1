//! Fault zoo: a busy loop whose every iteration is a host call.

use scope_plugin::*;

#[derive(Default)]
struct HostCallLoop;

impl Plugin for HostCallLoop {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Host call loop", "Fault zoo: asks the time forever")
    }

    fn report(&mut self) -> Result<Report, String> {
        loop {
            std::hint::black_box(host::now());
        }
    }
}

export_plugin!(HostCallLoop);
