//! `scope_json::encode_control_response` (with and without a shortcut report)
//! and `control_error_message` with generated guest answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scope_wasm::bindings::ControlError;
use scope_wasm::plugin_id::PluginId;
use scope_wasm_fuzz::generate::Gen;
use scope_wasm_fuzz::oracles;

fuzz_target!(|data: &[u8]| {
    let mut g = Gen::new(data);
    let with_shortcut = !g.src.byte().is_multiple_of(8);
    let text = g.text();
    let err = match g.src.byte() % 4 {
        0 => ControlError::UnknownControl(text),
        1 => ControlError::UnknownNode(text),
        2 => ControlError::InvalidArgument(text),
        _ => ControlError::Failed(text),
    };
    if let Err(failure) = oracles::control_error(&PluginId::parse("my-plugin").unwrap(), &err) {
        panic!("{failure}");
    }
    let case = g.case();
    if let Err(failure) = oracles::control_response(&case, with_shortcut) {
        panic!("{failure}");
    }
});
