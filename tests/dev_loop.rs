//! `scope-wasm dev`: the real binary watching a project, rebuilding on
//! edits, keeping the last good build when one fails, and a preview page
//! that a real headless Chromium draws and clicks.

mod support;

use std::time::{Duration, Instant};

use support::dev::Dev;
use support::guest;

/// A project whose "build" copies the plugin its `source` names (or fails
/// for `broken`): the loop's own behaviour, without a compiler's time.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("test")).unwrap();
    std::fs::write(dir.path().join("test/fixture.toml"), "hostname = \"preview-host\"\n[procfs.files]\nstat = \"cpu 100 0 100 800 0 0 0 0\\n\"\n").unwrap();
    std::fs::write(dir.path().join("source"), "counter").unwrap();
    let plugins = guest("counter").parent().unwrap().to_owned();
    std::fs::write(
        dir.path().join("build.sh"),
        format!(
            "set -e\nsource=$(cat source)\nif [ \"$source\" = broken ]; then echo 'source:1: syntax error near broken' >&2; exit 3; fi\n\
             mkdir -p target && cp {}/$source.wasm target/plugin.wasm\n",
            plugins.display()
        ),
    )
    .unwrap();
    dir
}

#[test]
fn an_edit_rebuilds_and_reloads_and_a_failed_build_keeps_the_last_good_one() {
    let dir = project();
    let dev = Dev::start(dir.path(), &["--build", "sh build.sh", "--id", "demo"], &[]);
    let first = dev.wait_for("loaded the first build", |s| s["generation"] == 1 && s["reports"].as_u64() >= Some(1));
    assert_eq!(first["label"], "Counter", "{first}");
    assert!(first["report"]["Host"]["nodes"]["preview-host;<host>"].is_object(), "{first}");
    assert!(first["edit_to_preview_ms"].is_u64(), "{first}");

    // An edit: a new build, loaded in place of the old one.
    std::fs::write(dir.path().join("source"), "iowait").unwrap();
    let second = dev.wait_for("reloaded after the edit", |s| s["generation"] == 2);
    assert_eq!(second["label"], "iowait", "{second}");
    assert_eq!(second["build"]["ok"], true);

    // A broken edit: the error with its cause, and the last good build serves on.
    std::fs::write(dir.path().join("source"), "broken").unwrap();
    let broken = dev.wait_for("saw the failed build", |s| s["build"]["ok"] == false && s["build"]["running"] == false);
    let log = broken["build"]["log"].as_str().unwrap();
    assert!(log.contains("`sh build.sh` failed (exit status: 3)") && log.contains("source:1: syntax error near broken"), "{log}");
    let reports = broken["reports"].as_u64().unwrap();
    let later = dev.wait_for("kept reporting with the old build", |s| s["reports"].as_u64() > Some(reports + 1));
    assert_eq!((later["generation"].as_u64(), later["label"].as_str()), (Some(2), Some("iowait")), "{later}");
    assert!(later["report"]["Host"]["nodes"]["preview-host;<host>"]["metrics"]["idle"].is_object(), "{later}");

    // Build output and editor droppings do not trigger builds.
    let generation = later["generation"].clone();
    std::fs::write(dir.path().join("target/other.o"), "x").unwrap();
    std::fs::write(dir.path().join(".#source"), "x").unwrap();
    std::fs::write(dir.path().join("source"), "counter").unwrap();
    let fixed = dev.wait_for("rebuilt after the fix", |s| s["generation"] != generation);
    assert_eq!((fixed["generation"].as_u64(), fixed["label"].as_str()), (Some(3), Some("Counter")), "{fixed}");
}

/// Pixels of `rgba` within 40 of `colour` on every channel.
fn pixels_like(rgba: &[u8], colour: [u8; 3]) -> usize {
    rgba.chunks(4).filter(|p| (0..3).all(|i| p[i].abs_diff(colour[i]) <= 40)).count()
}

#[test]
fn the_preview_page_draws_the_counter_in_chromium_and_a_click_resets_it() {
    let dir = project();
    let dev = Dev::start(dir.path(), &["--build", "sh build.sh", "--id", "counter"], &[]);
    dev.wait_for("reported", |s| s["reports"].as_u64() >= Some(1));
    let mut browser = support::chromium::Browser::open(&format!("http://{}/", dev.address));

    let value = |browser: &mut support::chromium::Browser| -> u64 {
        let text = browser.eval("document.querySelector('.metric-value[data-metric=counter]')?.textContent ?? ''");
        text.as_str().unwrap().parse().unwrap_or(0)
    };
    let started = Instant::now();
    while value(&mut browser) < 4 {
        assert!(started.elapsed() < Duration::from_secs(120), "the page never showed the counter at 4");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Drawn as the node-details panel draws it: the node, its metric with a
    // sparkline, its metadata rows, and only its active controls.
    let drawn = browser.eval(
        "(() => { const n = document.querySelector('[data-node=\"preview-host;<host>\"]');
          return { title: n.querySelector('.title .label').textContent,
                   buttons: [...n.querySelectorAll('button')].map(b => b.dataset.control),
                   rows: [...n.querySelectorAll('tr[data-latest]')].map(r => r.textContent),
                   points: n.querySelector('svg.sparkline[data-metric=counter] polyline').getAttribute('points').split(' ').length }; })()",
    );
    assert_eq!(drawn["title"], "preview-host", "{drawn}");
    assert_eq!(drawn["buttons"], serde_json::json!(["pause", "reset"]), "{drawn}");
    assert!(drawn["rows"].as_array().unwrap().iter().any(|r| r == "Counter statecounting"), "{drawn}");
    assert!(drawn["points"].as_u64() >= Some(3), "{drawn}");

    // The screenshot: the sparkline is really drawn in its colour, the value is drawn.
    let (width, height, sparkline) = browser.screenshot_of("svg.sparkline[data-metric=counter]");
    let stroke = pixels_like(&sparkline, [0, 120, 212]);
    assert!(stroke >= 50, "{stroke} of {width}x{height} sparkline pixels in the line's colour");
    let (_, _, before) = browser.screenshot_of(".metric-value[data-metric=counter]");
    assert!(pixels_like(&before, [60, 60, 60]) >= 10, "the value's digits are not drawn");
    let shown_before = value(&mut browser);

    // A click on `reset` (its confirmation accepted) runs the plugin's control for real.
    browser.eval("document.querySelector('button[data-control=reset]').click()");
    let started = Instant::now();
    while value(&mut browser) >= shown_before {
        assert!(started.elapsed() < Duration::from_secs(60), "the click never reset the counter");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, _, after) = browser.screenshot_of(".metric-value[data-metric=counter]");
    assert_ne!(before, after, "the screenshot of the value did not change");
    let state = dev.state();
    let count: u64 = state["report"]["Host"]["nodes"]["preview-host;<host>"]["latest"]["counter_value"]["value"].as_str().unwrap().parse().unwrap();
    assert!(count < shown_before, "the plugin's own count is {count}, it was {shown_before} before the reset");
}
