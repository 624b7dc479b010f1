//! Benchmark (not a test): Cranelift's settings for the first-ever compile of
//! the big components (the Python and JS conformance plugins, which embed
//! their language's runtime), against what each setting costs the guest's
//! calls afterwards. Measured in this process, one setting after the other:
//! the compile's wall and CPU time, the compiled size, and the p50 of the
//! guest's `report` call (the call every refresh makes) and of an
//! instantiation with its `describe`.

#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scope_wasm::bindings::PluginPre;
use scope_wasm::host::HostServices;
use scope_wasm::ops::guest_log::GuestLog;
use scope_wasm::plugin_id::PluginId;
use scope_wasm::run::state::PluginState;
use scope_wasm::{Overrides, Policy};
use support::{guest, stats};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, OptLevel, Store};

const LANGS: [&str; 2] = ["python", "js"];

/// (name, optimisation level, parallel compilation); the first is the daemon's.
const SETTINGS: [(&str, OptLevel, bool); 4] = [
    ("speed, parallel (the daemon's)", OptLevel::Speed, true),
    ("speed, one thread", OptLevel::Speed, false),
    ("none, parallel", OptLevel::None, true),
    ("speed_and_size, parallel", OptLevel::SpeedAndSize, true),
];

fn process_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes the process's CPU clock into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct Row {
    wall: Duration,
    cpu: Duration,
    size: usize,
    instantiate_p50: Duration,
    report_p50: Duration,
}

async fn measure(bytes: &[u8], level: OptLevel, parallel: bool) -> Row {
    let id = PluginId::parse("conformance").unwrap();
    let policy = Policy::load(None, &Overrides::default()).unwrap().for_plugin(&id);
    let mut config = scope_wasm::run::engine::engine_config(policy.limits.max_wasm_stack);
    config.cranelift_opt_level(level);
    config.parallel_compilation(parallel);
    let engine = Engine::new(&config).unwrap();

    let (started, cpu_before) = (Instant::now(), process_cpu());
    let compiled = engine.precompile_component(bytes).unwrap();
    let (wall, cpu) = (started.elapsed(), process_cpu() - cpu_before);

    // SAFETY: made by this engine just now.
    let component = unsafe { Component::deserialize(&engine, &compiled) }.unwrap();
    let mut linker = Linker::new(&engine);
    scope_wasm::run::state::add_to_linker(&mut linker).unwrap();
    let pre = PluginPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    let services = Arc::new(HostServices::new("bench".into(), Path::new("/nonexistent/docker.sock")));
    let new_store = || {
        let mut state = PluginState::new(&id, &services, &policy, GuestLog::new(id.clone()), None);
        // No epoch ticker runs here: the deadline is only for host calls.
        state.deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
        let mut store = Store::new(&engine, state);
        store.limiter(|state| &mut state.budget);
        store.set_epoch_deadline(1);
        store
    };

    let mut instantiations = Vec::new();
    for _ in 0..support::bench_count(9, 1) {
        let started = Instant::now();
        let mut store = new_store();
        let plugin = pre.instantiate_async(&mut store).await.unwrap();
        plugin.scope_plugin_handler().call_describe(&mut store).await.unwrap();
        instantiations.push(started.elapsed());
    }
    let mut store = new_store();
    let plugin = pre.instantiate_async(&mut store).await.unwrap();
    let handler = plugin.scope_plugin_handler();
    handler.call_describe(&mut store).await.unwrap();
    let mut reports = Vec::new();
    for _ in 0..support::bench_count(500, 5) {
        let started = Instant::now();
        handler.call_report(&mut store).await.unwrap().unwrap();
        reports.push(started.elapsed());
    }
    Row { wall, cpu, size: compiled.len(), instantiate_p50: stats(instantiations).p50, report_p50: stats(reports).p50 }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("## First compile of a big component: Cranelift's settings ({cpus} CPUs)\n");
    println!(
        "Each setting compiles the conformance plugin once in this process (`precompile_component`), then runs it: \
         instantiation with `describe` (p50 of a few), and the guest's `report` call (p50 of 500, the call a \
         refresh makes). Ratios are against the daemon's setting in the same run. Winch is left out (its recent \
         advisories).\n"
    );
    println!("| plugin | setting | compile wall s | compile CPU s | wall × daemon's | compiled MiB | instantiate ms | report µs | report × daemon's |");
    println!("|---|---|---|---|---|---|---|---|---|");
    // A smoke run (CI) checks that each step works: one plugin, two settings.
    let (langs, settings) = if support::bench_smoke() { (&LANGS[..1], &SETTINGS[..2]) } else { (&LANGS[..], &SETTINGS[..]) };
    for lang in langs {
        let bytes = std::fs::read(guest(&format!("conformance-{lang}"))).unwrap();
        let mut first: Option<Row> = None;
        for &(name, level, parallel) in settings {
            let row = measure(&bytes, level, parallel).await;
            let base = first.as_ref().unwrap_or(&row);
            println!(
                "| {lang} | {name} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.1} | {:.2} |",
                row.wall.as_secs_f64(),
                row.cpu.as_secs_f64(),
                row.wall.as_secs_f64() / base.wall.as_secs_f64(),
                row.size as f64 / (1 << 20) as f64,
                ms(row.instantiate_p50),
                row.report_p50.as_secs_f64() * 1e6,
                row.report_p50.as_secs_f64() / base.report_p50.as_secs_f64(),
            );
            first.get_or_insert(row);
        }
    }
    println!();
}
