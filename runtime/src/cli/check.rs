//! `scope-wasm check FILE.wasm`: everything the daemon would do with one plugin
//! file, once, printed for a human.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::time::Instant;

use crate::config::policy::Policy;
use crate::daemon::system_hostname;
use crate::host::http_probe::ProbeError;
use crate::host::{self, HostServices};
use crate::load::loader::PluginSource;
use crate::plugin_id::PluginId;
use crate::run::engine::Runtime;
use crate::run::worker::PluginHandle;

/// The `probe_id` shown in the report, as a probe would pass it.
const CHECK_PROBE_ID: &str = "scope-wasm-check";
/// How long `check` waits for the `http-traffic` eBPF programs to load.
const HTTP_PROBE_LOAD_WAIT: Duration = Duration::from_secs(10);

/// Returns the text to print; any failure is an error naming its cause.
/// The plugin is checked as `id` (its grants and limits), or as the daemon
/// would take it from the file's name.
pub async fn check(
    path: &Path,
    id: Option<PluginId>,
    policy: &Policy,
    hostname: Option<String>,
    docker_socket: &Path,
) -> Result<String> {
    let mut out = String::new();
    let id = match id.map_or_else(|| PluginId::from_wasm_path(path), Ok) {
        Ok(id) => id,
        Err(err) => {
            writeln!(
                out,
                "warning: {err:#}\n         the daemon would refuse this file name; checking it as `plugin` (--id names it)"
            )?;
            PluginId::parse("plugin")?
        }
    };
    let policy = policy.for_plugin(&id);
    let source = PluginSource::read(id.clone(), path)?;
    let (compiled, _) = Runtime::new(None)
        .compile(&source, policy.limits.max_wasm_stack)
        .await
        .with_context(|| path.display().to_string())?;

    let ty = compiled.component.component_type();
    let engine = compiled.pre.engine();
    let imports: Vec<&str> = ty.imports(engine).map(|(name, _)| name).collect();
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();

    let hostname: Arc<str> = hostname.unwrap_or_else(system_hostname).into();
    let services = Arc::new(HostServices::new(hostname, docker_socket));
    let mut capabilities = Vec::new();
    // Held through the report call, so the guest finds the programs attached.
    let mut http_probe = None;
    for cap in imports.iter().filter_map(|import| host::capability_of_import(import)) {
        if !policy.grants.allows(cap) {
            capabilities.push(format!("{cap} (NOT granted: calls are denied)"));
        } else if cap == "http-traffic" {
            let probe = services.http_probes.acquire();
            let state = match probe.ready(Instant::now() + HTTP_PROBE_LOAD_WAIT).await {
                Ok(()) => "eBPF programs attached".to_owned(),
                Err(ProbeError::Timeout) => "eBPF programs still loading".to_owned(),
                Err(ProbeError::Unavailable(why)) => format!("UNAVAILABLE on this host: {why}"),
            };
            capabilities.push(format!("{cap} (granted; {state})"));
            http_probe = Some(probe);
        } else {
            capabilities.push(format!("{cap} (granted)"));
        }
    }
    let handle = PluginHandle::start(&compiled, services, policy, Default::default()).await.map_err(|e| anyhow!(e))?;
    let started = Instant::now();
    let report = handle.report(handle.deadline()).await.map_err(|e| anyhow!(e))?;
    let elapsed = started.elapsed();
    let body = report.body(Some(CHECK_PROBE_ID)).map_err(|detail| anyhow!("plugin {id}: invalid report: {detail}"))?;
    let json: serde_json::Value = serde_json::from_slice(&body).context("re-reading the report")?;

    writeln!(out, "plugin:      {id}")?;
    writeln!(out, "label:       {}", handle.info.label)?;
    writeln!(out, "description: {}", handle.info.description)?;
    writeln!(out, "interfaces:  {}", json["Plugins"][0]["interfaces"])?;
    writeln!(out, "file:        sha256 {} (what policies, pins and tenants name)", source.hash)?;
    writeln!(out, "source:      {}", source_line(&source))?;
    writeln!(out, "imports:     {}", imports.join(", "))?;
    writeln!(out, "exports:     {}", exports.join(", "))?;
    let capabilities = if capabilities.is_empty() { "none".to_owned() } else { capabilities.join(", ") };
    writeln!(out, "capabilities: {capabilities}")?;
    writeln!(out, "report call: {:.1} ms", elapsed.as_secs_f64() * 1e3)?;
    writeln!(out, "GET /report?api_version=1&probe_id={CHECK_PROBE_ID} answers:")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&json).context("printing the report")?)?;
    drop(http_probe);
    Ok(out)
}

/// What the file carries beside its code: a plugin on a shared language
/// runtime has its own files in a section the runtime reads at run time, and
/// shares the code (and its compile) with every plugin on the same runtime.
fn source_line(source: &PluginSource) -> String {
    match &source.plugin_source {
        Some(files) => format!(
            "its own files, {} bytes, in its `{}` section; the code (sha256 {}) is shared by every plugin on the same runtime",
            files.len(),
            crate::load::loader::PLUGIN_SOURCE_SECTION,
            source.code_hash
        ),
        None => format!("all in its code (no `{}` section)", crate::load::loader::PLUGIN_SOURCE_SECTION),
    }
}
