//! The probe is decoupled from guest run time: polls are answered from the
//! latest report, refreshed in the background from the load on.

mod support;

use std::time::Duration;

use hyper::StatusCode;
use serde_json::Value;
use support::{Client, Daemon, guest, report_path};

fn host_latest(report: &Value, key: &str) -> String {
    report["Host"]["nodes"]["test-host;<host>"]["latest"][key]["value"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_slow_guest_does_not_slow_the_polls() {
    let daemon = Daemon::start(&[("slow-report.wasm", guest("slow-report"))], &["--refresh-ms", "200"]);
    let mut client = Client::connect(&daemon.socket("slow-report").await).await;
    // The first report was made when the plugin loaded, before its socket
    // opened: even the very first poll does not wait for the 300 ms guest.
    let first = client.get(&report_path("p")).await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert!(first.elapsed < Duration::from_millis(250), "the first poll waited for the guest: {:?}", first.elapsed);
    // Later polls get the latest report without waiting for the guest.
    let mut slowest = Duration::ZERO;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let reply = client.get(&report_path("p")).await;
        assert_eq!(reply.status, 200);
        slowest = slowest.max(reply.elapsed);
        seen.insert(host_latest(&reply.json, "slow_reports"));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(slowest < Duration::from_millis(150), "a poll waited for the 300 ms guest: {slowest:?}");
    assert!(seen.len() >= 2, "reports were refreshed meanwhile: {seen:?}");
}

#[tokio::test]
async fn a_report_that_keeps_failing_turns_into_its_error() {
    let daemon = Daemon::start(&[("fail-after-first.wasm", guest("fail-after-first"))], &["--refresh-ms", "100"]);
    let mut client = Client::connect(&daemon.socket("fail-after-first").await).await;
    // The guest's own failure is answered as soon as it is known, although
    // its good report is far younger than the staleness bound.
    let mut answers = Vec::new();
    for _ in 0..200 {
        let reply = client.get(&report_path("p")).await;
        answers.push(reply.status);
        if reply.status != 200 {
            assert_eq!(reply.status, 500, "{}", reply.json);
            assert_eq!(reply.json["error"], "plugin fail-after-first: zoo: data source gone");
            break;
        }
        assert_eq!(host_latest(&reply.json, "ok"), "yes");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(answers.last(), Some(&StatusCode::INTERNAL_SERVER_ERROR), "the failure never showed: {answers:?}");
    // And from then on, never the old report again.
    for _ in 0..10 {
        assert_eq!(client.get(&report_path("p")).await.status, 500);
    }
}

#[tokio::test]
async fn nothing_runs_while_nobody_polls() {
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &["--refresh-ms", "50"]);
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    assert_eq!(host_latest(&client.get(&report_path("p")).await.json, "counter_value"), "1");
    // No polls for 40 intervals: the refresher goes idle after 5.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let value: u64 = host_latest(&client.get(&report_path("p")).await.json, "counter_value").parse().unwrap();
    assert!(value <= 10, "the guest ran {value} times without polls; it should idle");
}

/// A probe polling slower than the refresh interval sets the cadence: the
/// guest runs about once per poll, just before it, so what each poll gets is
/// fresh and nothing is made that no poll reads.
#[tokio::test]
async fn refreshes_follow_the_probes_cadence() {
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &["--refresh-ms", "100"]);
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    let gap = Duration::from_millis(700);
    // Polls before this one teach the daemon the cadence.
    let learnt = 4;
    let polls = 12;
    let mut values = Vec::new();
    let mut ages_ms = Vec::new();
    let start = tokio::time::Instant::now();
    for i in 0..polls {
        tokio::time::sleep_until(start + gap * i).await;
        let reply = client.get(&report_path("p")).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        let polled_ms = chrono::Utc::now().timestamp_millis();
        let value = &reply.json["Host"]["nodes"]["test-host;<host>"]["latest"]["counter_value"];
        values.push(value["value"].as_str().unwrap().parse::<u64>().unwrap());
        let made = chrono::DateTime::parse_from_rfc3339(value["timestamp"].as_str().unwrap()).unwrap();
        if i >= learnt {
            ages_ms.push(polled_ms - made.timestamp_millis());
        }
    }
    let counted_polls = (polls - learnt) as u64;
    let runs = values[polls as usize - 1] - values[learnt as usize - 1];
    // At the 100 ms interval it would have run about 7 times per poll.
    assert!(runs <= counted_polls + 2, "the guest ran {runs} times for {counted_polls} polls: {values:?}");
    // Each made just before its poll (a report made right after the previous
    // poll would be 700 ms old); a few may miss on a busy host.
    let fresh = ages_ms.iter().filter(|age| **age < 350).count();
    assert!(fresh >= 6, "only {fresh} of {counted_polls} polls got a report made in the 350 ms before; ages in ms: {ages_ms:?}");
}

/// How many times the daemon has called the plugin, from its own metrics.
async fn calls(daemon: &Daemon, plugin: &str) -> f64 {
    let metrics = daemon.admin_get("/metrics").await;
    let series = format!("scope_wasm_plugin_calls_total{{plugin=\"{plugin}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(series.as_str())?.parse().ok()).unwrap_or(0.0)
}

/// A refresh that returns the same report as before is not checked and
/// rendered again: the probe keeps getting the very same bytes (the host's
/// timestamp on a value the guest left without one included), while a report
/// that changes gets new ones.
#[tokio::test]
async fn an_unchanged_report_is_not_rendered_again() {
    let daemon = Daemon::start(&[("same-report.wasm", guest("same-report")), ("counter.wasm", guest("counter"))], &["--refresh-ms", "100"]);
    let mut same = Client::connect(&daemon.socket("same-report").await).await;
    let mut counter = Client::connect(&daemon.socket("counter").await).await;
    let first_same = same.get(&report_path("p")).await;
    let first_counter = counter.get(&report_path("p")).await;
    assert_eq!(first_same.status, 200, "{}", first_same.json);
    let (same_before, counter_before) = (calls(&daemon, "same-report").await, calls(&daemon, "counter").await);
    // Polled as the probe would, until both guests were asked for new reports a few times.
    for round in 0.. {
        assert!(round < 600, "the guests were not asked for new reports");
        let (a, b) = (same.get(&report_path("p")).await, counter.get(&report_path("p")).await);
        assert_eq!(a.body, first_same.body, "the unchanged report's bytes changed: {}", a.json);
        if b.body != first_counter.body && calls(&daemon, "same-report").await >= same_before + 3.0 && calls(&daemon, "counter").await >= counter_before + 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let timestamp = &first_same.json["Host"]["nodes"]["test-host;<host>"]["latest"]["same"]["timestamp"];
    assert!(timestamp.is_string(), "the host stamps the value: {}", first_same.json);
}
