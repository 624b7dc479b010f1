//! Fault zoo: `describe` spins past its budget until the wall-clock time in
//! its `slow_until_ms` setting (Unix milliseconds), then answers at once. It
//! stands for a healthy plugin started while the host had no CPU to spare.

use std::time::{SystemTime, UNIX_EPOCH};

use scope_plugin::*;

#[derive(Default)]
struct SlowStart;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |t| t.as_millis() as u64)
}

impl Plugin for SlowStart {
    fn describe(&self) -> PluginInfo {
        let until: u64 = host::setting("slow_until_ms").and_then(|ms| ms.parse().ok()).unwrap_or(0);
        while now_ms() < until {
            std::hint::spin_loop();
        }
        PluginInfo::new("Slow start", "Fault zoo: too slow to start until a set time")
    }

    fn report(&mut self) -> Result<Report, String> {
        Ok(Report::new())
    }
}

export_plugin!(SlowStart);
