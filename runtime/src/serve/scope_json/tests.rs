use super::*;
use crate::config::limits::Limits;
use serde_json::{Value, json};

fn info() -> PluginInfo {
    PluginInfo { label: "Test".into(), description: "d".into() }
}

fn render_with(report: &Report, probe_id: Option<&str>) -> Result<Value, String> {
    let plugin = PluginId::parse("my-plugin").unwrap();
    let info = info();
    let ctx = RenderContext { plugin: &plugin, info: &info, hostname: None, now_ms: 1_479_372_784_567 };
    report_json(&ctx, report, probe_id)
}

fn node(id: &str) -> Node {
    Node { id: id.into(), latest: vec![], metrics: vec![], sets: vec![], parents: vec![], active_controls: vec![] }
}

fn topology(kind: TopologyKind, nodes: Vec<Node>) -> Topology {
    Topology {
        kind,
        nodes,
        controls: vec![],
        metadata_templates: vec![],
        metric_templates: vec![],
        table_templates: vec![],
    }
}

fn control(id: &str) -> Control {
    Control { id: id.into(), human: id.into(), icon: "fa-x".into(), confirmation: None, rank: 0 }
}

fn report(topologies: Vec<Topology>) -> Report {
    Report { topologies }
}

#[test]
fn spec_id_is_the_plugin_id_and_interfaces_follow_controls() {
    let json = render_with(&report(vec![topology(TopologyKind::Host, vec![node("h;<host>")])]), None).unwrap();
    assert_eq!(
        json["Plugins"],
        json!([{ "id": "my-plugin", "label": "Test", "description": "d",
                 "interfaces": ["reporter"], "api_version": "1" }])
    );
    let mut t = topology(TopologyKind::Host, vec![node("h;<host>")]);
    t.controls.push(control("c"));
    let json = render_with(&report(vec![t]), None).unwrap();
    assert_eq!(json["Plugins"][0]["interfaces"], json!(["reporter", "controller"]));
}

#[test]
fn keys_and_timestamps_are_what_the_probe_decodes() {
    let mut n = node("c1;<container>");
    n.latest.push(LatestEntry { key: "k".into(), value: "v".into(), timestamp: None });
    n.latest.push(LatestEntry { key: "at".into(), value: "w".into(), timestamp: Some(0) });
    n.parents.push(ParentSet { topology: TopologyKind::ContainerImage, ids: vec!["b".into(), "a".into(), "b".into()] });
    n.metrics.push(Metric { key: "m".into(), samples: vec![Sample { timestamp: 1000, value: 1.5 }], min: 0.0, max: 2.0 });
    n.metrics.push(Metric { key: "empty".into(), samples: vec![], min: 0.0, max: 1.0 });
    let json = render_with(&report(vec![topology(TopologyKind::ContainerImage, vec![n])]), None).unwrap();
    let n = &json["ContainerImage"]["nodes"]["c1;<container>"];
    assert_eq!(n["id"], "c1;<container>");
    assert_eq!(n["topology"], "container_image");
    assert_eq!(n["latest"]["k"], json!({ "timestamp": "2016-11-17T08:53:04.567Z", "value": "v" }));
    assert_eq!(n["latest"]["at"]["timestamp"], "1970-01-01T00:00:00.000Z");
    assert_eq!(n["parents"], json!({ "container_image": ["a", "b"] }));
    assert_eq!(n["metrics"]["m"], json!({ "samples": [{ "date": "1970-01-01T00:00:01.000Z", "value": 1.5 }], "min": 0.0, "max": 2.0 }));
    assert!(n["metrics"]["empty"].get("samples").is_none(), "empty samples crash the probe");
}

#[test]
fn controls_become_active_controls_and_probe_id() {
    let mut t = topology(TopologyKind::Host, vec![node("h;<host>"), node("other;<host>")]);
    t.controls = vec![control("b"), control("a")];
    t.nodes[0].active_controls = vec!["b".into(), "a".into()];
    let json = render_with(&report(vec![t]), Some("probe-7")).unwrap();
    let nodes = &json["Host"]["nodes"];
    assert_eq!(nodes["h;<host>"]["latest"]["active_controls"]["value"], "a;b");
    assert_eq!(nodes["h;<host>"]["latest"]["control_probe_id"]["value"], "probe-7");
    assert_eq!(nodes["other;<host>"]["latest"]["active_controls"]["value"], "");
    assert_eq!(json["Host"]["controls"]["a"], json!({ "id": "a", "human": "a", "icon": "fa-x", "rank": 0 }));
}

#[test]
fn lies_are_refused_with_the_place_named() {
    let cases: Vec<(Report, &str)> = vec![
        (report(vec![topology(TopologyKind::Host, vec![]), topology(TopologyKind::Host, vec![])]), "Host appears twice"),
        (report(vec![topology(TopologyKind::Host, vec![node("")])]), "empty ID"),
        (report(vec![topology(TopologyKind::Host, vec![node("x"), node("x")])]), "\"x\" appears twice"),
        (
            report(vec![topology(TopologyKind::Host, vec![{
                let mut n = node("x");
                n.active_controls.push("ghost".into());
                n
            }])]),
            "no controls",
        ),
        (
            report(vec![topology(TopologyKind::Host, vec![{
                let mut n = node("x");
                n.metrics.push(Metric { key: "m".into(), samples: vec![Sample { timestamp: 0, value: f64::NAN }], min: 0.0, max: 1.0 });
                n
            }])]),
            "not a finite number",
        ),
        (
            report(vec![topology(TopologyKind::Host, vec![{
                let mut n = node("x");
                n.latest.push(LatestEntry { key: "active_controls".into(), value: "x".into(), timestamp: None });
                n
            }])]),
            "reserved",
        ),
        (
            report(vec![topology(TopologyKind::Host, vec![{
                let mut n = node("x");
                n.latest.push(LatestEntry { key: "k".into(), value: "v".into(), timestamp: Some(u64::MAX) });
                n
            }])]),
            "out of range",
        ),
    ];
    for (report, expected) in cases {
        let err = render_with(&report, None).unwrap_err();
        assert!(err.contains(expected), "{err:?} should contain {expected:?}");
    }
}

#[test]
fn multicolumn_keys_must_name_row_and_column() {
    let mut t = topology(TopologyKind::Container, vec![node("x")]);
    t.table_templates.push(TableTemplate {
        id: "t".into(),
        label: "T".into(),
        prefix: "tc-".into(),
        type_: TableType::MulticolumnTable,
        columns: vec![],
        fixed_rows: vec![],
    });
    t.nodes[0].latest.push(LatestEntry { key: "tc-row___col".into(), value: "1".into(), timestamp: None });
    render_with(&report(vec![t.clone()]), None).unwrap();
    t.nodes[0].latest.push(LatestEntry { key: "tc-bad".into(), value: "1".into(), timestamp: None });
    let err = render_with(&report(vec![t]), None).unwrap_err();
    assert!(err.contains("tc-bad"), "{err}");
}

#[test]
fn shortcut_report_always_carries_one_controller_spec() {
    let plugin = PluginId::parse("p").unwrap();
    let info = info();
    let ctx = RenderContext { plugin: &plugin, info: &info, hostname: None, now_ms: 0 };
    let limits = crate::config::limits::Limits::default();
    let limits = RenderLimits { max_bytes: limits.max_report_bytes, items: &limits.report };
    let json = |response| -> Value { serde_json::from_slice(&encode_control_response(&ctx, &response, limits, None).unwrap()).unwrap() };
    let empty = json(ControlResponse { shortcut_report: None });
    assert_eq!(empty, json!({}));
    let with = json(ControlResponse { shortcut_report: Some(report(vec![])) });
    assert_eq!(with["shortcutReport"]["Plugins"].as_array().unwrap().len(), 1);
    assert_eq!(with["shortcutReport"]["Plugins"][0]["interfaces"], json!(["reporter", "controller"]));
}

fn latest(n: &mut Node, key: &str, value: &str, timestamp: Option<u64>) {
    n.latest.push(LatestEntry { key: key.into(), value: value.into(), timestamp });
}

fn encode_on(host: &str, report: &Report, items: &crate::config::limits::ReportLimits) -> Result<RenderedReport, String> {
    let plugin = PluginId::parse("p").unwrap();
    let info = info();
    let ctx = RenderContext { plugin: &plugin, info: &info, hostname: Some(host), now_ms: 1_479_372_784_567 };
    encode_report(&ctx, report, RenderLimits { max_bytes: 8 << 20, items })
}

#[test]
fn sizes_are_refused_by_count_before_rendering() {
    let items = crate::config::limits::ReportLimits { max_nodes: 10, max_samples: 5, max_values: 20, max_templates: 3, max_text_bytes: 1024 };
    let many_nodes = report(vec![topology(TopologyKind::Container, (0..11).map(|i| node(&i.to_string())).collect())]);
    assert!(encode_on("h", &many_nodes, &items).unwrap_err().contains("11 nodes, more than the limit of 10 (the plugin's `max_nodes` option)"));
    let mut n = node("c");
    n.metrics.push(Metric { key: "m".into(), samples: vec![Sample { timestamp: 0, value: 1.0 }; 6], min: 0.0, max: 1.0 });
    assert!(encode_on("h", &report(vec![topology(TopologyKind::Container, vec![n])]), &items).unwrap_err().contains("6 metric samples"));
    let mut n = node("c");
    n.sets.push(StringSet { key: "s".into(), values: (0..30).map(|i| i.to_string()).collect() });
    assert!(encode_on("h", &report(vec![topology(TopologyKind::Container, vec![n])]), &items).unwrap_err().contains("max_values"));
    let mut t = topology(TopologyKind::Container, vec![]);
    t.controls = (0..4).map(|i| control(&i.to_string())).collect();
    assert!(encode_on("h", &report(vec![t]), &items).unwrap_err().contains("max_templates"));
    let mut n = node("c");
    latest(&mut n, "k", &"v".repeat(2000), None);
    assert!(encode_on("h", &report(vec![topology(TopologyKind::Container, vec![n])]), &items).unwrap_err().contains("max_text_kib"));
}

#[test]
fn the_byte_limit_stops_the_writer() {
    let items = crate::config::limits::ReportLimits::default();
    let plugin = PluginId::parse("p").unwrap();
    let info = info();
    let ctx = RenderContext { plugin: &plugin, info: &info, hostname: None, now_ms: 0 };
    // Strings are small, so the count pass lets it through; the JSON is not.
    let nodes = (0..5000).map(|i| node(&format!("{i}"))).collect();
    let err = encode_report(&ctx, &report(vec![topology(TopologyKind::Container, nodes)]), RenderLimits { max_bytes: 64 << 10, items: &items })
        .unwrap_err();
    assert!(err.contains("more than the limit of 64 KiB"), "{err}");
}

#[test]
fn timestamps_the_probe_cannot_read_are_refused_and_future_ones_clamped() {
    let items = crate::config::limits::ReportLimits::default();
    let mut n = node("c");
    latest(&mut n, "k", "v", Some(253_402_300_800_000)); // 10000-01-01
    let err = encode_on("h", &report(vec![topology(TopologyKind::Container, vec![n])]), &items).unwrap_err();
    assert!(err.contains("after the year 9999"), "{err}");
    let mut n = node("c");
    latest(&mut n, "k", "v", Some(253_402_300_799_999)); // the last ms of 9999: readable, but far ahead
    let body = encode_on("h", &report(vec![topology(TopologyKind::Container, vec![n])]), &items).unwrap().body(None).unwrap();
    let json: Value = serde_json::from_slice(&body).unwrap();
    // now (2016-11-17T08:53:04.567Z) + 60 s of skew
    assert_eq!(json["Container"]["nodes"]["c"]["latest"]["k"]["timestamp"], "2016-11-17T08:54:04.567Z");
}

#[test]
fn a_plugin_speaks_only_for_its_own_host() {
    let items = crate::config::limits::ReportLimits::default();
    let host = |id: &str| report(vec![topology(TopologyKind::Host, vec![node(id)])]);
    encode_on("me", &host("me;<host>"), &items).unwrap();
    assert!(encode_on("me", &host("other;<host>"), &items).unwrap_err().contains("names another host"));
    let process = |id: &str| report(vec![topology(TopologyKind::Process, vec![node(id)])]);
    encode_on("me", &process("me;42"), &items).unwrap();
    assert!(encode_on("me", &process("other;42"), &items).is_err());
    for key in ["host_name", "os", "kernel_version"] {
        let mut n = node("me;<host>");
        latest(&mut n, key, "spoofed", None);
        let err = encode_on("me", &report(vec![topology(TopologyKind::Host, vec![n])]), &items).unwrap_err();
        assert!(err.contains("is the probe's own"), "{err}");
    }
}

#[test]
fn the_probe_id_goes_into_every_controlled_node_and_nowhere_else() {
    let limits = Limits::default();
    let mut t = topology(TopologyKind::Container, vec![node("a"), node("b")]);
    t.controls.push(control("c"));
    latest(&mut t.nodes[0], "zz", "1", None);
    let plugin = PluginId::parse("p").unwrap();
    let info = info();
    let ctx = RenderContext { plugin: &plugin, info: &info, hostname: None, now_ms: 0 };
    let rendered = encode_report(&ctx, &report(vec![t]), RenderLimits { max_bytes: 1 << 20, items: &limits.report }).unwrap();
    let with: Value = serde_json::from_slice(&rendered.body(Some("pr\"obe")).unwrap()).unwrap();
    for n in ["a", "b"] {
        assert_eq!(with["Container"]["nodes"][n]["latest"]["control_probe_id"]["value"], "pr\"obe");
        assert_eq!(with["Container"]["nodes"][n]["latest"]["active_controls"]["value"], "");
    }
    let without: Value = serde_json::from_slice(&rendered.body(None).unwrap()).unwrap();
    assert!(without["Container"]["nodes"]["a"]["latest"].get("control_probe_id").is_none());
    assert_eq!(without["Container"]["nodes"]["a"]["latest"]["zz"]["value"], "1");
    assert!(rendered.body(Some(&"x".repeat(200))).unwrap_err().contains("probe_id is 200 bytes long"));
}

#[test]
fn error_texts_quote_guest_strings_short() {
    let long = "x".repeat(100_000);
    let err = render_with(&report(vec![topology(TopologyKind::Container, vec![node(&long), node(&long)])]), None).unwrap_err();
    assert!(err.len() < 400, "{} bytes", err.len());
}
