//! `docker.get`'s path handling: normalisation, the read-only allow-list,
//! the scoped plugin's shorter list, and which paths are inspects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scope_wasm_fuzz::generate::Gen;
use scope_wasm_fuzz::oracles;

fuzz_target!(|data: &[u8]| {
    let mut g = Gen::new(data);
    let scoped = g.src.byte().is_multiple_of(4);
    let path = match g.src.byte() % 8 {
        0 => String::from_utf8_lossy(g.src.bytes(usize::MAX)).into_owned(),
        _ => g.docker_path(),
    };
    if let Err(failure) = oracles::docker_path(&path, scoped) {
        panic!("{failure}");
    }
});
