//! Fuzzing of the file decoders of the domain: topology files (YAML and JSON) and history CSV,
//! from arbitrary text and from valid files with random edits. Nothing panics; what is accepted
//! is valid; errors name where they are.
//!
//! `PROPTEST_CASES` sets the number of cases (CI runs the default, in seconds).

use proptest::prelude::*;

use crate::catalog::{builtin, parse_topology};
use crate::history::parse_history;
use crate::testing::cases;

/// One random edit of a text: where (a fraction of its length), what, and which byte.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Edit {
    Insert(f64, u8),
    Delete(f64, usize),
    Replace(f64, u8),
    Duplicate(f64, usize),
}

pub(crate) fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let at = 0.0..1.0f64;
    let byte = prop_oneof![
        4 => prop::sample::select(b" \n:-{}[],\"'0123456789.e#&*!|>%@`".to_vec()),
        1 => any::<u8>(),
    ];
    let edit = prop_oneof![
        (at.clone(), byte.clone()).prop_map(|(a, b)| Edit::Insert(a, b)),
        (at.clone(), 1usize..20).prop_map(|(a, n)| Edit::Delete(a, n)),
        (at.clone(), byte).prop_map(|(a, b)| Edit::Replace(a, b)),
        (at, 1usize..200).prop_map(|(a, n)| Edit::Duplicate(a, n)),
    ];
    prop::collection::vec(edit, 1..8)
}

/// `text` with `edits` applied (bytes; the result may not be UTF-8, so it is read lossily).
pub(crate) fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for edit in edits {
        let pos = |f: f64| ((bytes.len() as f64) * f) as usize;
        match *edit {
            Edit::Insert(f, b) => {
                let p = pos(f);
                bytes.insert(p, b);
            }
            Edit::Delete(f, n) => {
                let p = pos(f);
                let end = (p + n).min(bytes.len());
                bytes.drain(p..end);
            }
            Edit::Replace(f, b) => {
                let p = pos(f);
                if p < bytes.len() {
                    bytes[p] = b;
                }
            }
            Edit::Duplicate(f, n) => {
                let p = pos(f);
                let end = (p + n).min(bytes.len());
                let copy = bytes[p..end].to_vec();
                bytes.splice(p..p, copy);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

const YAML: &str = r#"
name: shop
functions:
  - name: front
    bounds: { cpu_millis: {min: 100, max: 1000}, memory_mib: {min: 128, max: 512}, replicas: {min: 1, max: 5}, concurrency: {min: 1, max: 20} }
    profile: { cpu_core_seconds: 0.02, io_seconds: 0.01 }
  - name: cart
  - name: stock
  - name: pay
plan:
  sequence:
    - call: { function: front, calls: { parallel: [ { call: cart }, { call: stock } ] } }
    - branch: [ { weight: 0.7, call: pay }, { weight: 0.3, call: stock } ]
"#;

const JSON: &str = r#"{"name":"two","functions":[{"name":"a"},{"name":"b","bounds":{"cpu_millis":{"min":100,"max":900},"memory_mib":{"min":128,"max":256},"replicas":{"min":1,"max":3},"concurrency":{"min":1,"max":4}}}],
"plan":{"sequence":[{"call":"a"},{"call":"b"}]}}"#;

const HISTORY: &str = include_str!("../../../../shared/data/parallel_10_train.csv");

fn history_sample() -> String {
    HISTORY.lines().take(6).collect::<Vec<_>>().join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

    /// Edited or arbitrary topology files parse to a valid workflow or fail with a parse or
    /// field error; never a panic.
    #[test]
    fn fuzz_topology_files(edits in edits(), json in any::<bool>(), junk in ".{0,200}", raw in any::<bool>()) {
        let text = if raw { junk } else { mutate(if json { JSON } else { YAML }, &edits) };
        if let Ok(w) = parse_topology(&text, json, "fuzz") {
            prop_assert!(!w.functions.is_empty());
            let a = w.adjacency();
            prop_assert_eq!(a.len(), w.len());
            for f in &w.functions {
                prop_assert!(f.bounds.cpu_millis.min <= f.bounds.cpu_millis.max);
                prop_assert!(f.bounds.replicas.min <= f.bounds.replicas.max);
            }
            // The middle of its space is a configuration of it.
            prop_assert!(w.config_from_actions(&vec![[0.5; 4]; w.len()]).is_ok());
        }
    }

    /// Edited history files parse whole (every row the workflow's width) or report errors
    /// naming a line; never a panic.
    #[test]
    fn fuzz_history_files(edits in edits()) {
        let w = builtin("parallel").unwrap();
        let text = mutate(&history_sample(), &edits);
        match parse_history(text.as_bytes(), &w) {
            Ok(rows) => {
                for r in &rows {
                    prop_assert_eq!(r.functions.len(), w.len());
                    prop_assert!(r.e2e_mean_seconds.is_finite());
                }
            }
            Err(e) => {
                for f in e.field_errors() {
                    prop_assert!(f.field.starts_with("line ") || !f.field.is_empty(), "{f}");
                    prop_assert!(f.message.len() <= 640);
                }
            }
        }
    }
}
