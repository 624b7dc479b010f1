//! `docker.get` of an inspect: the environment (`Config.Env`,
//! `ContainerConfig.Env`) never survives, whatever the body's shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scope_wasm_fuzz::generate::Gen;
use scope_wasm_fuzz::oracles;

fuzz_target!(|data: &[u8]| {
    let mut g = Gen::new(data);
    let (body, planted) = match g.src.byte() % 8 {
        0 => (g.src.bytes(usize::MAX).to_vec(), false),
        _ => (g.inspect_body(), true),
    };
    if let Err(failure) = oracles::docker_inspect_env(&body, planted) {
        panic!("{failure}\nbody: {}", String::from_utf8_lossy(&body));
    }
});
