//! `http-traffic`'s tenant filter: the container ID in a process's cgroup
//! text (`container_id_in`) and `may_see` for any PID.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use scope_wasm_fuzz::generate::Gen;
use scope_wasm_fuzz::oracles;

const ID: &str = "b65182abd3e076446486030563999728ad2a478abe4303ec82fd5ad159160306";

fuzz_target!(|data: &[u8]| {
    let mut g = Gen::new(data);
    let mut cgroup = String::new();
    for _ in 0..g.src.below(5) {
        let hex = &ID[..*g.src.pick(&[64, 63, 0, 1, 32])];
        let line = match g.src.byte() % 6 {
            0 => format!("0::/docker/{hex}{}\n", g.src.pick(&["", "0", "a", "/x", ".scope", "G"])),
            1 => format!("0::/system.slice/docker-{hex}.scope\n"),
            2 => format!("12:memory:/kubepods/pod1/{}\n", hex.to_uppercase()),
            3 => format!("{hex}{hex}\n"),
            _ => g.text(),
        };
        cgroup.push_str(&line);
    }
    if let Err(failure) = oracles::container_id(&cgroup) {
        panic!("{failure}");
    }
    let pid = match g.src.byte() % 4 {
        0 => std::process::id(),
        1 => *g.src.pick(&[1, 0, 2, u32::MAX, i32::MAX as u32]),
        _ => g.src.u32() % 4_194_305,
    };
    let visible: HashSet<String> = (0..g.src.below(3)).map(|_| g.text()).chain([ID.to_owned()]).collect();
    if let Err(failure) = oracles::may_see(pid, &visible) {
        panic!("{failure}");
    }
});
