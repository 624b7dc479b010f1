//! The server's `probe_id` from a request's query string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scope_wasm_fuzz::generate::Gen;
use scope_wasm_fuzz::oracles;

fuzz_target!(|data: &[u8]| {
    let mut g = Gen::new(data);
    let id = g.text();
    let before = *g.src.pick(&["", "a=1&", "&", "probe_idx=1&", "=&", "probe=1&"]);
    let query = String::from_utf8_lossy(g.src.bytes(usize::MAX)).into_owned();
    if let Err(failure) = oracles::probe_query(&query, &id, before) {
        panic!("{failure}");
    }
});
