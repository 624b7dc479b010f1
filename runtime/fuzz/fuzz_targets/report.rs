//! `scope_json::encode_report` with generated reports (see `generate::case`):
//! never a panic; errors short and placed; bodies for any probe strict JSON,
//! within the byte limit, saying what the report said (`oracles::report`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scope_wasm_fuzz::{generate, oracles};

fuzz_target!(|data: &[u8]| {
    let case = generate::case(data);
    if let Err(failure) = oracles::report(&case) {
        panic!("{failure}");
    }
});
