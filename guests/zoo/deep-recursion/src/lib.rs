//! Fault zoo: unbounded recursion in report, until the stack runs out.

use scope_plugin::*;

#[derive(Default)]
struct DeepRecursion;

#[inline(never)]
#[allow(unconditional_recursion)] // the point of this guest
fn descend(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 16]);
    descend(depth + 1) + frame[(depth % 16) as usize]
}

impl Plugin for DeepRecursion {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Deep recursion", "Fault zoo: overflows its stack")
    }

    fn report(&mut self) -> Result<Report, String> {
        Err(format!("unreachable: {}", descend(0)))
    }
}

export_plugin!(DeepRecursion);
