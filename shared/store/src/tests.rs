use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use faasconf_core::catalog::builtin;
use faasconf_core::history::read_history;

use super::*;

const HISTORY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/parallel_10_train.csv"
);

fn history() -> &'static [faasconf_core::history::HistoryRow] {
    static ROWS: std::sync::OnceLock<Vec<faasconf_core::history::HistoryRow>> =
        std::sync::OnceLock::new();
    ROWS.get_or_init(|| read_history(Path::new(HISTORY), &builtin("parallel").unwrap()).unwrap())
}

fn observation(i: u64) -> Observation {
    let w = builtin("parallel").unwrap();
    let rows = history();
    let mut o = observation_from_history(
        &w,
        &rows[(i as usize) % rows.len()],
        "test",
        -0.1 * i as f64,
        i.is_multiple_of(2),
    );
    o.seq = i;
    o
}

#[test]
fn observations_round_trip_in_order() {
    let mut store = Store::in_memory().unwrap();
    let batch: Vec<Observation> = (0..5).map(observation).collect();
    let ids = store.record(&batch).unwrap();
    assert_eq!(ids.len(), 5);
    let back = store.observations(&builtin("parallel").unwrap()).unwrap();
    assert_eq!(
        back.iter()
            .map(|s| s.observation.clone())
            .collect::<Vec<_>>(),
        batch
    );
    assert_eq!(store.count("parallel").unwrap(), 5);
    assert_eq!(store.count("tcktapp").unwrap(), 0);
}

#[test]
fn the_whole_history_file_imports() {
    let w = builtin("parallel").unwrap();
    let rows = history();
    let observations: Vec<Observation> = rows
        .iter()
        .map(|r| observation_from_history(&w, r, "import", 0.0, true))
        .collect();
    let mut store = Store::in_memory().unwrap();
    store.record(&observations).unwrap();
    let back = store.observations(&builtin("parallel").unwrap()).unwrap();
    assert_eq!(back.len(), rows.len());
    let first = &back[0].observation;
    assert_eq!(
        (
            first.window.config.clone(),
            first.users,
            first.window.workflow.cost
        ),
        (
            rows[0].config(),
            rows[0].users.round() as u32,
            rows[0].price
        )
    );
}

#[test]
fn bands_and_models_are_versioned() {
    let mut store = Store::in_memory().unwrap();
    store
        .record_band(
            "parallel",
            20,
            &serde_json::json!({ "lower": 1.0, "upper": 2.0 }),
        )
        .unwrap();
    store
        .record_band(
            "parallel",
            20,
            &serde_json::json!({ "lower": 1.5, "upper": 2.5 }),
        )
        .unwrap();
    let latest: serde_json::Value = store.latest_band("parallel", 20).unwrap().unwrap();
    assert_eq!(latest["lower"], 1.5);
    assert!(
        store
            .latest_band::<serde_json::Value>("parallel", 30)
            .unwrap()
            .is_none()
    );
    let v1 = store
        .add_model(
            "parallel",
            "models/1",
            &serde_json::json!({ "algorithm": "attmf" }),
        )
        .unwrap();
    let v2 = store
        .add_model(
            "parallel",
            "models/2",
            &serde_json::json!({ "algorithm": "mf" }),
        )
        .unwrap();
    let other = store
        .add_model("tcktapp", "models/3", &serde_json::json!({}))
        .unwrap();
    assert!(store.promote(v1).unwrap() && store.promote(other).unwrap());
    assert!(store.promote(v2).unwrap());
    assert!(!store.promote(99).unwrap());
    let promoted: Vec<(i64, bool)> = store
        .models(None)
        .unwrap()
        .iter()
        .map(|m| (m.version, m.promoted))
        .collect();
    assert_eq!(
        promoted,
        [(v1, false), (v2, true), (other, true)],
        "one promoted version per workflow"
    );
    assert_eq!(store.models(Some("parallel")).unwrap().len(), 2);
}

/// Run as a child process by the test below: records one observation per transaction forever,
/// saying so after each commit.
fn write_until_killed(path: &str) {
    let mut store = Store::open(Path::new(path)).unwrap();
    for i in 0.. {
        store.record(&[observation(i)]).unwrap();
        println!("committed {}", i + 1);
    }
}

#[test]
fn a_killed_writer_loses_nothing_it_committed() {
    if let Ok(path) = std::env::var("FAASCONF_STORE_WRITER") {
        write_until_killed(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::a_killed_writer_loses_nothing_it_committed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FAASCONF_STORE_WRITER", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut committed = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().strip_prefix("committed ") {
            committed = n.parse().unwrap();
            if committed >= 40 {
                child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint
                break;
            }
        }
    }
    child.wait().unwrap();
    assert!(committed >= 40, "the writer stopped early");
    let store = Store::open(&path).unwrap();
    let stored = store.count("parallel").unwrap();
    assert!(
        stored >= committed,
        "{committed} committed, {stored} found after the kill"
    );
    let seqs: Vec<u64> = store
        .observations(&builtin("parallel").unwrap())
        .unwrap()
        .iter()
        .map(|s| s.observation.seq)
        .collect();
    assert_eq!(
        seqs,
        (0..stored).collect::<Vec<_>>(),
        "nothing missing, nothing torn"
    );
}

#[test]
fn rows_that_do_not_decode_or_fit_are_skipped() {
    let w = builtin("parallel").unwrap();
    let mut store = Store::in_memory().unwrap();
    store.record(&[observation(0)]).unwrap();
    let mut short = observation(1);
    short.actions.pop();
    let mut renamed = observation(2);
    renamed.window.functions[0].function = "ghost".into();
    store.record(&[short, renamed, observation(3)]).unwrap();
    store
        .connection
        .execute(
            "INSERT INTO observations (workflow, source, session, seq, users, price, reward, qos_met, payload) VALUES ('parallel', 'twin', 'x', 9, 1, 0, 0, 0, '{not json')",
            [],
        )
        .unwrap();
    let seqs: Vec<u64> = store
        .observations(&w)
        .unwrap()
        .iter()
        .map(|s| s.observation.seq)
        .collect();
    assert_eq!(seqs, [0, 3]);
}

#[test]
fn a_damaged_file_fails_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faasconf.db");
    {
        let mut store = Store::open(&path).unwrap();
        let batch: Vec<Observation> = (0..400).map(observation).collect();
        store.record(&batch).unwrap();
        store
            .connection
            .pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .unwrap();
    }
    // Overwrite pages in the middle of the file, as a bad disk or a torn copy would.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 64 * 1024, "{}", bytes.len());
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 8192] {
        *b = 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    match Store::open(&path) {
        Err(e @ Error::Damaged(_)) => assert!(e.to_string().contains("damaged"), "{e}"),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("a damaged store opened"),
    }
}

#[test]
fn imported_history_comes_back_as_the_same_rows() {
    let w = builtin("parallel").unwrap();
    let rows = history();
    let mut store = Store::in_memory().unwrap();
    let observations: Vec<Observation> = rows
        .iter()
        .map(|r| observation_from_history(&w, r, "import", 0.0, true))
        .collect();
    store.record(&observations).unwrap();
    let back: Vec<_> = store
        .observations(&w)
        .unwrap()
        .iter()
        .filter_map(|s| history_from_observation(&w, &s.observation))
        .collect();
    assert_eq!(back.len(), rows.len());
    for (b, r) in back.iter().zip(rows) {
        assert_eq!(b, r, "line {}", r.line);
    }
    // A window without users is an open-loop row at its measured rate, and comes back alike.
    let mut open = observations[0].clone();
    open.window.users = 0;
    open.window.workflow.arrivals = 90;
    open.window.workflow.mean_in_flight = 6.5;
    let row = history_from_observation(&w, &open).expect("an open-loop row");
    assert_eq!(row.arrivals_per_second, Some(3.0));
    assert_eq!(row.users, 6.5);
    let again = observation_from_history(&w, &row, "import", 0.0, true);
    assert_eq!(history_from_observation(&w, &again), Some(row));
    // What calibration cannot use is left out: no load at all, a stalled rollout, a window
    // with series missing.
    let mut idle = open.clone();
    idle.window.workflow.arrivals = 0;
    idle.window.workflow.total_requests = 0;
    assert!(history_from_observation(&w, &idle).is_none());
    let mut stalled = observations[0].clone();
    stalled.window.workflow.rollout_stalled = true;
    assert!(history_from_observation(&w, &stalled).is_none());
    let mut partial = observations[0].clone();
    partial.window.workflow.missing_series = vec!["e2e".into()];
    assert!(history_from_observation(&w, &partial).is_none());
}
