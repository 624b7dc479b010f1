//! Fault zoo: every report allocates (and touches) memory until the host's
//! budget stops it.

use scope_plugin::*;

#[derive(Default)]
struct MemoryBomb {
    hoard: Vec<Vec<u8>>,
}

impl Plugin for MemoryBomb {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Memory bomb", "Fault zoo: eats memory without end")
    }

    fn report(&mut self) -> Result<Report, String> {
        loop {
            self.hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

export_plugin!(MemoryBomb);
