//! `procfs::resolve` with guest paths: nothing outside the documented safe
//! subset is ever accepted (no `..`, links, `self`, environ without grant).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scope_wasm_fuzz::generate::Gen;
use scope_wasm_fuzz::oracles;

fuzz_target!(|data: &[u8]| {
    let mut g = Gen::new(data);
    let environ = g.src.bool();
    let path = match g.src.byte() % 8 {
        0 => String::from_utf8_lossy(g.src.bytes(usize::MAX)).into_owned(),
        _ => g.procfs_path(),
    };
    if let Err(failure) = oracles::procfs_path(&path, environ) {
        panic!("{failure}");
    }
});
