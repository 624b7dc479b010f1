//! Checking an answer: a JSON subset match (every key the expectation names
//! must be there with the same value; lists element by element) and direct
//! assertions on nodes. Each mismatch is one line naming where it is.

use serde_json::Value;

use super::script::Assertion;

/// Mismatches between `expected` and `actual`, as lines naming the place.
pub fn subset(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    compare(expected, actual, "$", &mut out);
    out
}

fn compare(expected: &Value, actual: &Value, at: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let here = child(at, key);
                match have.get(key) {
                    Some(got) => compare(value, got, &here, out),
                    None => out.push(format!("{here}: missing (expected {})", shown(value))),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                out.push(format!("{at}: expected {} items, got {}", want.len(), have.len()));
            }
            for (index, (value, got)) in want.iter().zip(have).enumerate() {
                compare(value, got, &format!("{at}[{index}]"), out);
            }
        }
        (Value::Number(want), Value::Number(have)) => {
            let (want, have) = (want.as_f64().unwrap_or(f64::NAN), have.as_f64().unwrap_or(f64::NAN));
            if (want - have).abs() > 1e-9 * want.abs().max(1.0) {
                out.push(format!("{at}: expected {want}, got {have}"));
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("{at}: expected {}, got {}", shown(expected), shown(actual))),
    }
}

/// `$.Host.nodes["h;<host>"]`: plain keys dotted, others quoted.
fn child(at: &str, key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        format!("{at}.{key}")
    } else {
        format!("{at}[{}]", Value::from(key))
    }
}

/// A value on one line, cut short.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 120 {
        return text;
    }
    format!("{}…", text.chars().take(120).collect::<String>())
}

/// Every node of a report, with its topology's key.
fn nodes(report: &Value) -> Vec<(&str, &str, &Value)> {
    let Some(topologies) = report.as_object() else { return Vec::new() };
    topologies
        .iter()
        .filter_map(|(topology, value)| Some((topology.as_str(), value.get("nodes")?.as_object()?)))
        .flat_map(|(topology, nodes)| nodes.iter().map(move |(id, node)| (topology, id.as_str(), node)))
        .collect()
}

/// What is wrong with `report` by `assertion`, if anything.
pub fn check(assertion: &Assertion, report: &Value) -> Vec<String> {
    let all = nodes(report);
    let found = all.iter().find(|(_, id, _)| *id == assertion.node);
    let name = &assertion.node;
    let node = match (found, assertion.present) {
        (Some(_), Some(false)) => return vec![format!("node {name:?}: present, expected absent")],
        (None, Some(false)) => return Vec::new(),
        (Some((_, _, node)), _) => *node,
        (None, _) => {
            let ids: Vec<&str> = all.iter().map(|(_, id, _)| *id).collect();
            let known = if ids.is_empty() { "the report has no nodes".to_owned() } else { format!("its nodes: {}", ids.join(", ")) };
            return vec![format!("node {name:?}: not in the report ({known})")];
        }
    };
    let mut out = Vec::new();
    if let Some(metric) = &assertion.metric {
        match node["metrics"][metric]["samples"].as_array().and_then(|s| s.last()).and_then(|s| s["value"].as_f64()) {
            None => out.push(format!("node {name:?}: no samples of metric {metric:?}")),
            Some(value) => {
                let low = assertion.min.is_some_and(|min| value < min);
                let high = assertion.max.is_some_and(|max| value > max);
                let other = assertion.equals.is_some_and(|want| (want - value).abs() > 1e-9 * want.abs().max(1.0));
                if low || high || other {
                    let range = match (assertion.equals, assertion.min, assertion.max) {
                        (Some(want), _, _) => format!("{want}"),
                        (None, min, max) => format!(
                            "between {} and {}",
                            min.map_or("-inf".into(), |v| v.to_string()),
                            max.map_or("+inf".into(), |v| v.to_string())
                        ),
                    };
                    out.push(format!("node {name:?}: metric {metric:?} is {value}, expected {range}"));
                }
            }
        }
    }
    if let Some(control) = &assertion.control {
        let active_list = node["latest"]["active_controls"]["value"].as_str().unwrap_or("");
        let active = active_list.split(';').any(|c| c == control);
        let want = assertion.active.unwrap_or(true);
        if active != want {
            let state = if active { "active" } else { "not active" };
            let shown = if active_list.is_empty() { "none".into() } else { active_list.replace(';', ", ") };
            out.push(format!("node {name:?}: control {control:?} is {state} (active: {shown}), expected the opposite"));
        }
    }
    if let Some(key) = &assertion.latest {
        match (node["latest"][key]["value"].as_str(), &assertion.value) {
            (None, _) => out.push(format!("node {name:?}: no latest value {key:?}")),
            (Some(got), Some(want)) if got != want => {
                out.push(format!("node {name:?}: latest {key:?} is {got:?}, expected {want:?}"))
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_subset_names_each_difference() {
        let actual = json!({ "Host": { "nodes": { "h;<host>": { "id": "h;<host>", "x": 1.0 } } }, "Plugins": [{ "id": "p" }, {}] });
        assert!(subset(&json!({ "Host": { "nodes": {} } }), &actual).is_empty());
        assert!(subset(&json!({ "Host": { "nodes": { "h;<host>": { "x": 1 } } } }), &actual).is_empty());
        let diff = subset(&json!({ "Host": { "nodes": { "h;<host>": { "x": 2, "y": true } } }, "Plugins": [{ "id": "q" }] }), &actual);
        assert_eq!(
            diff,
            vec![
                "$.Host.nodes[\"h;<host>\"].x: expected 2, got 1",
                "$.Host.nodes[\"h;<host>\"].y: missing (expected true)",
                "$.Plugins: expected 1 items, got 2",
                "$.Plugins[0].id: expected \"q\", got \"p\"",
            ]
        );
    }

    #[test]
    fn assertions_read_metrics_controls_and_latest() {
        let report = json!({ "Host": { "nodes": { "n": {
            "latest": { "active_controls": { "value": "a;b" }, "k": { "value": "v" } },
            "metrics": { "m": { "samples": [{ "value": 1.0 }, { "value": 42.5 }] } }
        } } } });
        let ok = Assertion { node: "n".into(), metric: Some("m".into()), min: Some(40.0), max: Some(50.0), control: Some("b".into()), latest: Some("k".into()), value: Some("v".into()), ..Default::default() };
        assert!(check(&ok, &report).is_empty());
        let bad = Assertion { node: "n".into(), metric: Some("m".into()), max: Some(10.0), control: Some("c".into()), ..Default::default() };
        assert_eq!(
            check(&bad, &report),
            vec![
                "node \"n\": metric \"m\" is 42.5, expected between -inf and 10",
                "node \"n\": control \"c\" is not active (active: a, b), expected the opposite",
            ]
        );
        let missing = Assertion { node: "x".into(), ..Default::default() };
        assert_eq!(check(&missing, &report), vec!["node \"x\": not in the report (its nodes: n)"]);
        assert!(check(&Assertion { node: "x".into(), present: Some(false), ..Default::default() }, &report).is_empty());
    }
}
