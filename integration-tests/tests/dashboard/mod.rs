//! The Grafana dashboard in `deploy/grafana`: the metric names its queries use, and the check
//! that the services export every one of them.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect
#![allow(dead_code)]

use std::collections::BTreeSet;

/// The dashboard, parsed.
pub fn dashboard() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/faasconf-dashboard.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every PromQL query of the dashboard: panel targets and variable queries.
pub fn queries(dashboard: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            found.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = variable["query"]["query"].as_str() {
            found.push(q.to_owned());
        }
    }
    found
}

/// The metric names a PromQL query selects: identifiers directly before `{`, and every
/// identifier starting with `faasconf_` (our metrics; no label or function starts so).
pub fn metric_names(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    // Strings (label values) and `$variables` hold no metric names.
    let mut cleaned = String::new();
    let mut in_string = false;
    for c in query.chars() {
        match c {
            '"' => {
                in_string = !in_string;
                cleaned.push(' ');
            }
            _ if in_string => cleaned.push(' '),
            _ => cleaned.push(c),
        }
    }
    let bytes: Vec<char> = cleaned.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || "_:$".contains(bytes[i]))
            {
                i += 1;
            }
            let word: String = bytes[start..i].iter().collect();
            let before_brace = bytes.get(i) == Some(&'{');
            if !word.starts_with('$') && (before_brace || word.starts_with("faasconf_")) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Series names in Prometheus text exposition.
pub fn exported_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// Panics unless every metric the dashboard queries is in one of `scrapes`.
pub fn check_against(scrapes: &[String]) {
    let exported: BTreeSet<String> = scrapes.iter().flat_map(|s| exported_names(s)).collect();
    let queried: BTreeSet<String> = queries(&dashboard())
        .iter()
        .flat_map(|q| metric_names(q))
        .collect();
    let missing: Vec<&String> = queried.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the services do not export: {missing:?}\nexported: {exported:?}"
    );
}

#[test]
fn metric_names_are_found_in_queries() {
    let q = r#"histogram_quantile(0.99, sum by (le, path) (rate(faasconf_policy_recommendation_seconds_bucket[$__rate_interval]))) / up{job="x{y"} + label_values(faasconf_actuator_windows_total, workflow)"#;
    assert_eq!(
        metric_names(q),
        BTreeSet::from([
            "faasconf_actuator_windows_total".to_owned(),
            "faasconf_policy_recommendation_seconds_bucket".to_owned(),
            "up".to_owned()
        ])
    );
    let scrape = "# HELP a x\n# TYPE a counter\na{b=\"c\"} 1\nd_bucket{le=\"1\"} 2\ne 3\n";
    assert_eq!(
        exported_names(scrape),
        BTreeSet::from(["a".to_owned(), "d_bucket".to_owned(), "e".to_owned()])
    );
}

/// The dashboard shows what operators asked for: QoS compliance, cost, per-function
/// configuration, recommendation latency, SES replacements, training reward and loss, apply
/// errors and rollbacks.
#[test]
fn the_dashboard_covers_the_operators_questions() {
    let used: BTreeSet<String> = queries(&dashboard())
        .iter()
        .flat_map(|q| metric_names(q))
        .collect();
    for needed in [
        "faasconf_policy_windows_total",
        "faasconf_actuator_window_cost",
        "faasconf_actuator_function_config",
        "faasconf_policy_recommendation_seconds_bucket",
        "faasconf_policy_ses_replacements_total",
        "faasconf_policy_reward",
        "faasconf_policy_critic_loss",
        "faasconf_actuator_applies_total",
        "faasconf_actuator_rollbacks_total",
        "faasconf_policy_rollbacks_total",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
    let d = dashboard();
    assert!(d["uid"].is_string() && d["title"].is_string() && d["schemaVersion"].is_number());
    for panel in d["panels"].as_array().unwrap() {
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{}",
                panel["title"]
            );
            assert!(
                !panel["targets"].as_array().unwrap().is_empty(),
                "{}",
                panel["title"]
            );
        }
    }
}
