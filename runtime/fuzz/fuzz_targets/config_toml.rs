//! The config file: any TOML text is parsed or refused with its place, and
//! every plugin's policy of an accepted file passes `Limits::validate`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scope_wasm_fuzz::generate::Gen;
use scope_wasm_fuzz::oracles;

fuzz_target!(|data: &[u8]| {
    let text = Gen::new(data).config_toml();
    if let Err(failure) = oracles::config(&text) {
        panic!("{failure}");
    }
});
