//! Fault zoo: a plugin whose report and control never return. The host must
//! answer with a deadline error in time and rebuild the instance.

use scope_plugin::*;

#[derive(Default)]
struct LoopForever;

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl Plugin for LoopForever {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Loop forever", "Fault zoo: never answers")
    }

    fn report(&mut self) -> Result<Report, String> {
        println!("loop-forever: spinning in report");
        spin()
    }

    fn control(&mut self, _request: ControlRequest) -> Result<ControlResponse, ControlError> {
        spin()
    }
}

export_plugin!(LoopForever);
