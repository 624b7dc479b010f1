//! The guest log: `escape_controls`, `host.log` calls through the daemon's
//! log formats, and WASI stdout split into lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scope_wasm_fuzz::generate::Gen;
use scope_wasm_fuzz::oracles;

fuzz_target!(|data: &[u8]| {
    let mut g = Gen::new(data);
    let text = g.text();
    let max = match g.src.byte() % 3 {
        0 => *g.src.pick(&[4096, 0, 1, 2, 5, 9, 10, 11, 200, usize::MAX]),
        _ => g.src.below(5000),
    };
    if let Err(failure) = oracles::escape(&text, max) {
        panic!("{failure}");
    }
    let calls: Vec<(u8, String)> = (0..g.src.below(6)).map(|_| (g.src.byte(), g.text())).collect();
    if let Err(failure) = oracles::guest_log_calls(&calls) {
        panic!("{failure}");
    }
    let chunks: Vec<Vec<u8>> = (0..g.src.below(8))
        .map(|_| match g.src.byte() % 3 {
            0 => {
                let n = g.src.below(64);
                g.src.bytes(n).to_vec()
            }
            _ => g.text().into_bytes(),
        })
        .collect();
    let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    if let Err(failure) = oracles::guest_stdout(&chunks) {
        panic!("{failure}");
    }
});
