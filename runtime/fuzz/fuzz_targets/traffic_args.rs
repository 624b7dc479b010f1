//! `traffic`'s guest numbers (latency, loss, rate) into `tc` arguments, and
//! `tc -j qdisc show` output back into a `shaping`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scope_wasm_fuzz::generate::Gen;
use scope_wasm_fuzz::oracles;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let mut g = Gen::new(data);
    let latency = match g.src.byte() % 4 {
        0 => None,
        1 => Some(*g.src.pick(&[0, 1, 59_999, 60_000, 60_001, u32::MAX])),
        _ => Some(g.src.u32()),
    };
    let loss = match g.src.byte() % 3 {
        0 => None,
        _ => Some(g.float()),
    };
    let rate = match g.src.byte() % 3 {
        0 => *g.src.pick(&[0, 1, 80_000_000, 80_000_001, u64::MAX / 1000, u64::MAX / 1000 + 1, u64::MAX]),
        _ => g.src.u64(),
    };
    if let Err(failure) = oracles::traffic(latency, loss, rate) {
        panic!("{failure}");
    }
    let tc = match g.src.byte() % 4 {
        0 => String::from_utf8_lossy(g.src.bytes(256)).into_owned(),
        _ => {
            let kind = match g.src.byte() % 4 {
                0 => json!("tbf"),
                1 => json!("netem"),
                2 => json!("noqueue"),
                _ => g.json(1),
            };
            let root = match g.src.byte() % 3 {
                0 => json!(true),
                _ => g.json(0),
            };
            let options = json!({
                "rate": g.json(0),
                "delay": { "delay": g.float() },
                "loss-random": { "loss": g.json(1) },
            });
            json!([{ "kind": kind, "root": root, "options": options }, g.json(2)]).to_string()
        }
    };
    if let Err(failure) = oracles::tc_output(&tc) {
        panic!("{failure}");
    }
});
