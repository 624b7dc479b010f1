//! Fault zoo: recursion 5000 calls deep on the wasm stack. Fine with the
//! default stack limit, a stack overflow under a small per-plugin limit.

use scope_plugin::*;

#[derive(Default)]
struct StackHungry;

/// Not a tail call, and not an accumulation LLVM could turn into a loop.
#[inline(never)]
fn descend(n: u32) -> u64 {
    if n == 0 {
        return 1;
    }
    descend(n - 1).rotate_left(n % 7) ^ u64::from(n)
}

impl Plugin for StackHungry {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Stack hungry", "Fault zoo: deep but bounded recursion")
    }

    fn report(&mut self) -> Result<Report, String> {
        let value = descend(std::hint::black_box(5000));
        let node = Node::new(ids::this_host()).latest("descent", value.to_string());
        Ok(Report::new().with(Topology::new(TopologyKind::Host).node(node)))
    }
}

export_plugin!(StackHungry);
