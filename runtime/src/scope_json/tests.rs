use super::*;

fn info() -> PluginInfo {
    PluginInfo { label: "Test".into(), description: "d".into() }
}

fn render_with(report: &Report, probe_id: Option<&str>) -> Result<Value, String> {
    let plugin = PluginId::parse("my-plugin").unwrap();
    let info = info();
    let ctx = RenderContext { plugin: &plugin, info: &info, probe_id, now_ms: 1_479_372_784_567 };
    report_json(&ctx, report)
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
    let ctx = RenderContext { plugin: &plugin, info: &info, probe_id: None, now_ms: 0 };
    let empty = control_response_json(&ctx, &ControlResponse { shortcut_report: None }).unwrap();
    assert_eq!(empty, json!({}));
    let with = control_response_json(&ctx, &ControlResponse { shortcut_report: Some(report(vec![])) }).unwrap();
    assert_eq!(with["shortcutReport"]["Plugins"].as_array().unwrap().len(), 1);
    assert_eq!(with["shortcutReport"]["Plugins"][0]["interfaces"], json!(["reporter", "controller"]));
}
