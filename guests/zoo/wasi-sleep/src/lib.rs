//! Fault zoo: sleeps for ten seconds through WASI's monotonic clock. The guest
//! waits inside a host call, where epoch interruption cannot reach it.

use scope_plugin::*;

#[derive(Default)]
struct WasiSleep;

impl Plugin for WasiSleep {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("WASI sleep", "Fault zoo: sleeps through its deadline")
    }

    fn report(&mut self) -> Result<Report, String> {
        std::thread::sleep(std::time::Duration::from_secs(10));
        Ok(Report::new())
    }
}

export_plugin!(WasiSleep);
