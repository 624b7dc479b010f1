//! Property tests (issue #14): the report encoder and the host side of every
//! WIT interface with generated guest input at extreme sizes and values, and
//! the config file parser. The generators and the checks are the cargo-fuzz
//! targets' own (runtime/fuzz/src, included here by path), so `make test`
//! runs briefly what `make fuzz` runs for minutes.
//!
//! `PROPTEST_CASES` sets the cases per property (default 64, about 10 s in a
//! debug build). No live backend is needed: nothing here talks to Docker, tc
//! or eBPF; procfs reads only this process's own /proc.

#[allow(dead_code)]
#[path = "../runtime/fuzz/src/source.rs"]
mod source;

#[allow(dead_code)]
#[path = "../runtime/fuzz/src/generate.rs"]
mod generate;

#[allow(dead_code)]
#[path = "../runtime/fuzz/src/oracles.rs"]
mod oracles;

use std::collections::HashSet;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use proptest::test_runner::Config;

use generate::{Case, Gen, HOSTNAME, KINDS, MAX_TIMESTAMP_MS, NOW_MS};
use scope_wasm::bindings::*;
use scope_wasm::config::limits::{Limits, ReportLimits};
use scope_wasm::plugin_id::PluginId;
use scope_wasm::serve::scope_json::{self, RenderContext, RenderLimits};

/// `PROPTEST_CASES` cases, or `default`; failures are not written to files
/// (a failure found here becomes a named test instead).
fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Fails the case with the oracle's message.
fn holds(outcome: oracles::Outcome) -> Result<(), TestCaseError> {
    outcome.map_err(TestCaseError::fail)
}

/// Raw bytes for the byte-driven generators: short ones make ordinary
/// reports, long ones reach the extremes.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..64), vec(any::<u8>(), 0..2048)]
}

fn case_with(report: Report, probe_id: Option<String>) -> Case {
    Case {
        plugin: PluginId::parse("my-plugin").unwrap(),
        info: PluginInfo { label: "Test".into(), description: "d".into() },
        hostname: Some(HOSTNAME.into()),
        now_ms: NOW_MS,
        limits: ReportLimits::default(),
        max_bytes: Limits::default().max_report_bytes,
        probe_id,
        report,
    }
}

fn render(case: &Case) -> Result<scope_json::RenderedReport, String> {
    let ctx = RenderContext {
        plugin: &case.plugin,
        info: &case.info,
        hostname: case.hostname.as_deref(),
        now_ms: case.now_ms,
    };
    scope_json::encode_report(&ctx, &case.report, RenderLimits { max_bytes: case.max_bytes, items: &case.limits })
}

fn node(id: String) -> Node {
    Node { id, latest: vec![], metrics: vec![], sets: vec![], parents: vec![], active_controls: vec![] }
}

fn topology(kind: TopologyKind, nodes: Vec<Node>) -> Topology {
    Topology { kind, nodes, controls: vec![], metadata_templates: vec![], metric_templates: vec![], table_templates: vec![] }
}

fn control(id: &str) -> Control {
    Control { id: id.into(), human: "h".into(), icon: "fa-x".into(), confirmation: None, rank: 0 }
}

// ---- typed strategies: reports every rule accepts -------------------------------

/// Timestamps anywhere the probe can read, weighted to the edges.
fn readable_timestamp() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(NOW_MS),
        Just(NOW_MS + 60_000),
        Just(NOW_MS + 60_001),
        Just(MAX_TIMESTAMP_MS),
        0..=MAX_TIMESTAMP_MS,
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(-0.0), Just(f64::MAX), Just(f64::MIN), Just(f64::MIN_POSITIVE), Just(5e-324), -1e9..1e9f64]
}

/// Any string a guest may send, control characters and all.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\\x00-\\x1f\\x7f\\u{85}\\u{2028}\\u{202e};~\"\\\\a-z]{0,12}", Just(String::new())]
}

prop_compose! {
    fn valid_node(control_ids: Vec<String>)(
        id in "[a-z0-9]{1,12}",
        latest in btree_map("[a-z]{1,8}", (any_text(), proptest::option::of(readable_timestamp())), 0..6),
        metrics in btree_map("[a-z]{1,8}", (vec((readable_timestamp(), finite()), 0..5), finite(), finite()), 0..3),
        sets in vec(("[a-z]{1,4}", vec(any_text(), 0..4)), 0..3),
        parents in vec((proptest::sample::select(KINDS.to_vec()), vec(any_text(), 0..3)), 0..3),
        active in proptest::sample::subsequence(control_ids.clone(), 0..=control_ids.len()),
    ) -> Node {
        Node {
            id: format!("{id};<container>"),
            latest: latest.into_iter().map(|(key, (value, timestamp))| LatestEntry { key, value, timestamp }).collect(),
            metrics: metrics
                .into_iter()
                .map(|(key, (samples, a, b))| Metric {
                    key,
                    samples: samples.into_iter().map(|(timestamp, value)| Sample { timestamp, value }).collect(),
                    min: a.min(b),
                    max: a.max(b),
                })
                .collect(),
            sets: sets.into_iter().map(|(key, values)| StringSet { key, values }).collect(),
            parents: parents.into_iter().map(|(topology, ids)| ParentSet { topology, ids }).collect(),
            active_controls: active,
        }
    }
}

/// A topology of unique nodes (by ID), with or without controls.
fn valid_topology(kind: TopologyKind) -> impl Strategy<Value = Topology> {
    btree_set("[a-z]{1,6}", 0..4).prop_flat_map(move |controls| {
        let ids: Vec<String> = controls.into_iter().collect();
        (vec(valid_node(ids.clone()), 0..12), Just(ids)).prop_map(move |(nodes, ids)| {
            let mut seen = HashSet::new();
            let nodes = nodes.into_iter().filter(|n| seen.insert(n.id.clone())).collect();
            Topology { controls: ids.iter().map(|id| control(id)).collect(), ..topology(kind, nodes) }
        })
    })
}

/// Reports of a few distinct topologies (not host or process: those name hosts).
fn valid_report() -> impl Strategy<Value = Report> {
    let kinds: Vec<TopologyKind> =
        KINDS.into_iter().filter(|k| !matches!(k, TopologyKind::Host | TopologyKind::Process)).collect();
    proptest::sample::subsequence(kinds, 1..4)
        .prop_flat_map(|kinds| kinds.into_iter().map(valid_topology).collect::<Vec<_>>())
        .prop_map(|topologies| Report { topologies })
}

fn probe_id() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "[0-9a-f]{16}".prop_map(Some),
        any_text().prop_map(Some),
        Just(Some("x".repeat(128))),
        Just(Some("x".repeat(129))),
    ]
}

// ---- the report encoder ----------------------------------------------------------

proptest! {
    #![proptest_config(config(64))]

    /// Generated reports of every shape: never a panic, errors short and
    /// placed, bodies strict JSON within the limit that say what was sent.
    #[test]
    fn reports_from_bytes_render_or_are_refused_in_place(data in bytes()) {
        holds(oracles::report(&generate::case(&data)))?;
    }

    /// The same for shortcut reports, and control errors' messages.
    #[test]
    fn control_responses_from_bytes(data in bytes(), with_shortcut in any::<bool>(), message in any_text(), kind in 0..4u8) {
        let err = match kind {
            0 => ControlError::UnknownControl(message),
            1 => ControlError::UnknownNode(message),
            2 => ControlError::InvalidArgument(message),
            _ => ControlError::Failed(message),
        };
        holds(oracles::control_error(&PluginId::parse("my-plugin").unwrap(), &err))?;
        holds(oracles::control_response(&generate::case(&data), with_shortcut))?;
    }

    /// A report that keeps every rule always renders, whatever its strings.
    #[test]
    fn valid_reports_always_render_exactly(report in valid_report(), probe_id in probe_id()) {
        let case = case_with(report, probe_id);
        prop_assert!(render(&case).is_ok(), "{:?}", render(&case).err());
        holds(oracles::report(&case))?;
        holds(oracles::control_response(&case, true))?;
    }

    /// Timestamps past year 9999 are refused in place; later than now + 60 s
    /// are clamped; non-finite samples are refused.
    #[test]
    fn extreme_values_are_refused_or_clamped(
        at in prop_oneof![Just(u64::MAX), Just(MAX_TIMESTAMP_MS + 1), Just(i64::MAX as u64 + 1), any::<u64>(), readable_timestamp()],
        value in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), any::<f64>()],
        in_sample in any::<bool>(),
    ) {
        let mut n = node("c1;<container>".into());
        if in_sample {
            n.metrics.push(Metric { key: "m".into(), samples: vec![Sample { timestamp: at, value }], min: 0.0, max: 1.0 });
        } else {
            n.latest.push(LatestEntry { key: "k".into(), value: "v".into(), timestamp: Some(at) });
        }
        let case = case_with(Report { topologies: vec![topology(TopologyKind::Container, vec![n])] }, None);
        holds(oracles::report(&case))?;
        match render(&case) {
            Ok(_) => prop_assert!(at <= MAX_TIMESTAMP_MS && (!in_sample || value.is_finite())),
            Err(err) => {
                prop_assert!(err.starts_with("topology Container: node \"c1;<container>\": "), "{err}");
                prop_assert!(err.contains("year 9999") || err.contains("not a finite number"), "{err}");
            }
        }
    }
}

/// One kind of item, `n` of them, in a report against `limits`.
fn report_of(what: &str, n: usize) -> Report {
    let mut t = topology(TopologyKind::Container, vec![node("c;<container>".into())]);
    match what {
        "max_nodes" => t.nodes = (0..n).map(|i| node(format!("n{i};<container>"))).collect(),
        "max_samples" => {
            let sample = Sample { timestamp: NOW_MS, value: 1.0 };
            t.nodes[0].metrics.push(Metric { key: "m".into(), samples: vec![sample; n], min: 0.0, max: 1.0 });
        }
        "max_values" => {
            t.nodes[0].latest =
                (0..n).map(|i| LatestEntry { key: format!("k{i}"), value: "v".into(), timestamp: None }).collect()
        }
        "max_templates" => t.controls = (0..n).map(|i| control(&format!("c{i}"))).collect(),
        "max_text_kib" => t.nodes[0].latest.push(LatestEntry { key: "k".into(), value: "é".repeat(n / 2), timestamp: None }),
        _ => unreachable!(),
    }
    Report { topologies: vec![t] }
}

/// Every item limit is exact: the limit passes, one more is refused, naming
/// the plugin's option. With small limits, and the node limit at its default.
#[test]
fn item_limits_are_exact_at_their_edges() {
    let small = ReportLimits { max_nodes: 40, max_samples: 40, max_values: 40, max_templates: 40, max_text_bytes: 400 };
    let defaults = ReportLimits::default();
    let cases: &[(&str, &ReportLimits, usize)] = &[
        ("max_nodes", &small, 40),
        ("max_samples", &small, 40),
        ("max_values", &small, 40),
        ("max_templates", &small, 40),
        ("max_text_kib", &small, 400),
        ("max_nodes", &defaults, defaults.max_nodes),
        ("max_samples", &defaults, defaults.max_samples),
        ("max_values", &defaults, defaults.max_values),
        ("max_templates", &defaults, defaults.max_templates),
        ("max_text_kib", &defaults, defaults.max_text_bytes),
    ];
    for &(option, limits, limit) in cases {
        for n in [limit - 2, limit, limit + 2] {
            // At the defaults, the byte limit is the largest a config allows, so the item limit binds.
            let max_bytes = 40 << 20;
            let case = Case { limits: limits.clone(), max_bytes, ..case_with(report_of(option, n), Some("p".into())) };
            if limit < 1_000 {
                // The whole check costs more than the render: only on the small cases.
                oracles::report(&case).unwrap_or_else(|e| panic!("{option} = {n}: {e}"));
            }
            match render(&case) {
                Ok(_) => assert!(n <= limit, "{option}: {n} items passed a limit of {limit}"),
                Err(err) => {
                    assert!(n > limit, "{option}: {n} items refused for a limit of {limit}: {err}");
                    assert!(err.contains(&format!("`{option}`")), "{option}: {err}");
                }
            }
        }
    }
}

/// A body never outgrows its byte limit, also once the probe's ID is in
/// every node with controls: the limit is exact, to the byte.
#[test]
fn the_byte_limit_is_exact_with_and_without_a_probe_id() {
    let mut t = topology(TopologyKind::Container, (0..50).map(|i| node(format!("n{i};<container>"))).collect());
    t.controls.push(control("c"));
    let mut case = case_with(Report { topologies: vec![t] }, Some("0123456789abcdef".into()));
    let unlimited = render(&case).unwrap();
    let with_id = unlimited.body(case.probe_id.as_deref()).unwrap().len();
    let without = unlimited.body(None).unwrap().len();
    for max_bytes in [without - 1, without, with_id - 1, with_id] {
        case.max_bytes = max_bytes;
        oracles::report(&case).unwrap_or_else(|e| panic!("limit {max_bytes}: {e}"));
        let rendered = render(&case);
        assert_eq!(rendered.is_ok(), max_bytes >= without, "limit {max_bytes}");
        if let Ok(rendered) = rendered {
            assert_eq!(rendered.body(case.probe_id.as_deref()).is_ok(), max_bytes >= with_id, "limit {max_bytes}");
        }
    }
}

// ---- procfs, docker, traffic, http-traffic ------------------------------------------

fn generated<T: std::fmt::Debug>(make: fn(&mut Gen) -> T) -> impl Strategy<Value = T> {
    bytes().prop_map(move |data| make(&mut Gen::new(&data)))
}

proptest! {
    #![proptest_config(config(256))]

    /// Nothing outside the documented subset of /proc is ever accepted.
    #[test]
    fn procfs_accepts_only_the_safe_subset(
        path in prop_oneof![
            generated(|g| g.procfs_path()),
            "(/proc/)?(self|[0-9]{1,3}|net|sys|pressure|\\.\\.)(/[a-z_.0-9+-]{0,12}){0,4}",
            any::<String>(),
        ],
        environ in any::<bool>(),
    ) {
        holds(oracles::procfs_path(&path, environ))?;
    }

    /// Raw Docker GETs: normalised once and for all, read-only, on the list.
    #[test]
    fn docker_raw_paths_pass_only_as_listed(
        path in prop_oneof![
            generated(|g| g.docker_path()),
            "(/|//)?(containers|images|networks|version|info|%2e|%2E%2e|\\.\\.|[a-z0-9:@._-]{1,8})(/[a-z0-9%:@._-]{0,10}){0,5}(\\?[a-z=&%_]{0,14})?",
            any::<String>(),
        ],
        scoped in any::<bool>(),
    ) {
        holds(oracles::docker_path(&path, scoped))?;
    }

    /// An inspect's environment never survives, whatever the body's shape.
    #[test]
    fn docker_inspects_lose_their_environment(body in generated(|g| g.inspect_body()), raw in vec(any::<u8>(), 0..256)) {
        holds(oracles::docker_inspect_env(&body, true))?;
        holds(oracles::docker_inspect_env(&raw, false))?;
    }

    /// Any guest numbers: `tc` arguments in range, or a refusal with the range.
    #[test]
    fn traffic_numbers_are_checked_without_panicking(
        latency in proptest::option::of(prop_oneof![Just(60_000u32), Just(60_001), Just(u32::MAX), any::<u32>()]),
        loss in proptest::option::of(prop_oneof![Just(-0.0), Just(100.0), Just(f64::NAN), Just(f64::INFINITY), Just(5e-324), any::<f64>()]),
        rate in prop_oneof![Just(0u64), Just(80_000_000), Just(80_000_001), Just(u64::MAX / 1000 + 1), Just(u64::MAX), any::<u64>()],
        tc in prop_oneof![any::<String>(), "\\[\\{\"kind\":\"(tbf|netem)\",\"root\":true,\"options\":\\{\"rate\":[0-9]{1,25}\\}\\}\\]"],
    ) {
        holds(oracles::traffic(latency, loss, rate))?;
        holds(oracles::tc_output(&tc))?;
    }

    /// The container a tenant's counters are filtered by: a whole 64-digit run.
    #[test]
    fn cgroup_paths_name_the_container_or_none(
        lines in vec(prop_oneof![
            "0::/docker/[0-9a-f]{63,65}",
            "0::/system.slice/docker-[0-9a-fA-F]{64}\\.scope",
            "[0-9]+:[a-z]+:/[a-z0-9/.-]{0,80}",
            any::<String>(),
        ], 0..4),
        pid in prop_oneof![Just(1u32), Just(std::process::id()), Just(0), Just(u32::MAX), any::<u32>()],
    ) {
        let cgroup = lines.join("\n");
        holds(oracles::container_id(&cgroup))?;
        let visible: HashSet<String> = lines.into_iter().collect();
        holds(oracles::may_see(pid, &visible))?;
    }
}

// ---- the guest log, the server's query, the config file ---------------------------------

proptest! {
    #![proptest_config(config(64))]

    /// `escape_controls`: bounded, no control characters, cut between pieces.
    #[test]
    fn guest_text_is_escaped_within_its_limit(text in any_text(), max in prop_oneof![0..20usize, 0..5000usize, Just(usize::MAX)]) {
        holds(oracles::escape(&text, max))?;
    }

    /// One `host.log` call is one log line, in both log formats.
    #[test]
    fn each_log_call_is_one_line(calls in vec((any::<u8>(), prop_oneof![any_text(), "\\PC{4090,4100}"]), 0..8)) {
        holds(oracles::guest_log_calls(&calls))?;
    }

    /// WASI stdout in any chunks: lines of at most 4 KiB, cut between characters.
    #[test]
    fn stdout_becomes_bounded_lines(
        chunks in vec(prop_oneof![
            vec(any::<u8>(), 0..64),
            any_text().prop_map(String::into_bytes),
            "[日🙂é a\\n]{1000,1400}".prop_map(String::into_bytes),
        ], 0..8),
    ) {
        let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        holds(oracles::guest_stdout(&chunks))?;
    }

    /// The server's `probe_id`: any query, and any value back exactly.
    #[test]
    fn probe_ids_come_back_from_the_query(query in any::<String>(), id in any_text(), before in "(a=1&|&|probe_idx=1&)?") {
        holds(oracles::probe_query(&query, &id, &before))?;
    }

    /// Config files: any text parsed or refused, every accepted policy valid.
    #[test]
    fn accepted_configs_give_every_plugin_valid_limits(text in prop_oneof![generated(|g| g.config_toml()), any::<String>()]) {
        holds(oracles::config(&text))?;
    }
}

/// One section's worth of limits near the edges of their ranges.
fn section_limits() -> impl Strategy<Value = String> {
    let key = |key: &'static str, edges: &'static [&'static str]| {
        proptest::option::of(proptest::sample::select(edges)).prop_map(move |v| v.map(|v| format!("{key} = {v}\n")))
    };
    (
        key("max_report_kib", &["1", "16", "64", "8192", "40960"]),
        key("max_text_kib", &["1", "16", "64", "8192"]),
        key("call_timeout_ms", &["1", "450"]),
        key("refresh_ms", &["50", "60000"]),
        key("max_wasm_stack_kib", &["64", "16384"]),
    )
        .prop_map(|(a, b, c, d, e)| [a, b, c, d, e].into_iter().flatten().collect())
}

proptest! {
    #![proptest_config(config(512))]

    /// `[defaults]`, a glob and an exact section, each valid on its own:
    /// whatever the file accepts gives every plugin valid limits.
    #[test]
    fn glob_and_exact_sections_combine_into_valid_limits(
        defaults in section_limits(),
        glob in section_limits(),
        exact in section_limits(),
    ) {
        let text = format!("[defaults]\n{defaults}[plugins.\"team-*\"]\n{glob}[plugins.team-a]\n{exact}");
        holds(oracles::config(&text))?;
    }
}

/// Sections that set different keys combine into valid limits.
#[test]
fn sections_combine_into_valid_limits() {
    for text in [
        "[plugins.\"team-*\"]\nmemory_mib = 1\n[plugins.team-a]\nmax_instances = 1\n",
        "[defaults]\nmax_report_kib = 64\nmax_text_kib = 32\n[plugins.\"a*\"]\nmax_text_kib = 64\n",
    ] {
        oracles::config(text).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The WASI stdout splitter at its 4 KiB edge: a character across the cut
/// stays whole in the next piece.
#[test]
fn stdout_splits_long_lines_between_characters() {
    for prefix in 0..4 {
        let line = format!("{}{}\n", "a".repeat(prefix), "日".repeat(3000));
        oracles::guest_stdout(&[line.as_bytes()]).unwrap_or_else(|e| panic!("prefix {prefix}: {e}"));
    }
}

/// What the host's own lists must go on refusing, by name.
#[test]
fn known_escapes_stay_refused() {
    use scope_wasm::config::grants::ProcfsGrant;
    use scope_wasm::host::docker::{RawPath, check_raw_path};
    for path in ["self/environ", "1/task/1/environ", "1/root", "../1/stat", "/proc/1/../1/stat", "1/fd/0", "net/../1/environ"] {
        assert!(scope_wasm::host::procfs::resolve(path, &ProcfsGrant { environ: true }).is_err(), "{path}");
    }
    for path in ["/containers/%2e%2e/json", "/v1.41/containers/abc/json", "/containers/abc/top?ps_args=e", "/images/a/get"] {
        assert!(RawPath::parse(path).and_then(|raw| check_raw_path(&raw, false)).is_err(), "{path}");
    }
}

// ---- bugs the fuzzing found, kept as regression tests ------------------------------

/// Regression (found by the `procfs_path` fuzz target in seconds): a refused
/// procfs path was quoted whole, Debug-escaped, in the refusal, so a guest's
/// 1 MiB path of ESC bytes made a 6 MiB string in the host (a 64 MiB guest
/// could make 360 MiB). The refusal now quotes at most 200 bytes of it.
#[test]
fn procfs_refusals_are_short() {
    use scope_wasm::bindings::scope::plugin::procfs::ProcfsError;
    use scope_wasm::config::grants::ProcfsGrant;
    let path = "\u{1b}".repeat(1 << 20);
    match scope_wasm::host::procfs::resolve(&path, &ProcfsGrant::default()) {
        Err(ProcfsError::Denied(why)) => assert!(why.len() < 4096, "a refusal of {} bytes for a path of {}", why.len(), path.len()),
        other => panic!("{other:?}"),
    }
}

/// Regression (found by `glob_and_exact_sections_combine_into_valid_limits`
/// after about 130 cases): each `[plugins.*]` section was validated alone over
/// `[defaults]`, but `Policy::for_plugin` combines every matching one, so a
/// glob's report limit and an exact section's text limit could combine into
/// limits `Limits::validate` refused. The text limit no longer depends on the
/// report limit (which still caps every string).
#[test]
fn combined_sections_are_validated() {
    use scope_wasm::config::ConfigFile;
    let text = "[plugins.\"team-*\"]\nmax_report_kib = 64\n[plugins.team-a]\nmax_text_kib = 8192\n";
    let file = ConfigFile::parse(text).unwrap();
    // Accepting the file is fine if the plugin's limits are valid; refusing it is fine too.
    let Ok(config) = file.run_config("f.toml", &scope_wasm::Overrides::default()) else { return };
    let limits = config.operator_policy().for_plugin(&PluginId::parse("team-a").unwrap()).limits;
    limits.validate().unwrap_or_else(|e| panic!("accepted, but team-a gets invalid limits: {e:#}"));
}
