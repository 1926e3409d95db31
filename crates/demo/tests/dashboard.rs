//! The dashboard in a real headless Chromium, as a person uses it: open
//! the page, press the scenario buttons, and watch the charts move. The
//! screenshot lands in target/test-artifacts/dashboard.png.

mod common;

use common::stack;
use larder_testkit::Browser;
use serde_json::{json, Value};
use std::time::Duration;

/// How many samples a chart canvas says it drew.
const POINTS: &str = "return Number(document.getElementById(arguments[0]).dataset.points || 0);";

/// Presses the page's button for scenario `name` and waits for the page
/// to report it done.
fn run_scenario(browser: &Browser, name: &str, timeout: Duration) {
    browser.click(&format!("#run-{name}")).unwrap();
    let done = format!(
        "return window.larder.scenario && window.larder.scenario.name === '{name}' && window.larder.scenario.state === 'done';"
    );
    browser.wait_for(&format!("the {name} scenario to finish"), &done, timeout).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_runs_scenarios_and_its_charts_follow() {
    let config = larder_demo::Config { sample_every: Duration::from_millis(250), ..Default::default() };
    let Some(stack) = stack(config).await else { return };
    let url = format!("http://{}/dashboard?poll=250", stack.addr);
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/dashboard.png");
    // WebDriver calls block: keep them off the runtime serving the page.
    let to = shot.clone();
    let seen = tokio::task::spawn_blocking(move || {
        let browser = Browser::start()?;
        browser.goto(&url).unwrap();
        browser
            .wait_for(
                "the charts' first samples",
                "return Number(document.getElementById('chart-hit').dataset.points || 0) > 0;",
                Duration::from_secs(30),
            )
            .unwrap();
        let before = browser.eval(POINTS, json!(["chart-db"])).unwrap();

        // A short load run through the button: cache off, then on.
        browser.eval("document.getElementById('load-seconds').value = '2'; return null;", json!([])).unwrap();
        run_scenario(&browser, "load", Duration::from_secs(90));
        // Let the charts take the last phase's samples.
        std::thread::sleep(Duration::from_millis(800));
        let load = browser.eval("return window.larder.scenario;", json!([])).unwrap();
        let samples = browser.eval("return window.larder.samples;", json!([])).unwrap();
        let after = browser.eval(POINTS, json!(["chart-db"])).unwrap();
        let headline = browser.eval("return document.getElementById('fig-hit').textContent;", json!([])).unwrap();

        run_scenario(&browser, "stampede", Duration::from_secs(60));
        let stampede =
            browser.eval("return document.getElementById('scenario-status').textContent;", json!([])).unwrap();
        browser.screenshot(&to).unwrap();
        Some((before, after, load, samples, headline, stampede))
    })
    .await
    .unwrap();
    let Some((before, after, load, samples, headline, stampede)) = seen else { return };

    assert!(after.as_u64() > before.as_u64(), "the database chart did not grow: {before} → {after}");
    assert!(load["result"]["ratio"].as_f64().unwrap() < 1.0, "{load}");
    let samples = samples.as_array().unwrap();
    // The cache-off phase shows up as database load with a zero hit
    // ratio, the cache-on phase as a high hit ratio.
    let hit = |s: &Value| s["hit_ratio"].as_f64();
    assert!(samples.iter().any(|s| hit(s) == Some(0.0) && s["db_qps"].as_f64().unwrap() > 0.0), "{samples:?}");
    assert!(samples.iter().any(|s| hit(s).is_some_and(|h| h > 0.5)), "{samples:?}");
    assert!(samples.iter().any(|s| s["p99_ms"].as_f64().is_some()), "{samples:?}");
    assert!(headline.as_str().unwrap().ends_with('%'), "headline hit ratio: {headline}");
    assert_eq!(stampede.as_str().unwrap(), "100 concurrent misses of one key cost 1 database query");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "screenshot saved at {}", shot.display());
}
