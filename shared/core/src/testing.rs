//! What every crate's fuzzing properties share (feature `testing`, for dev-dependencies): the
//! number of cases (`PROPTEST_CASES`, so a longer run is one variable away) and random edits
//! of a valid input text, the usual way to reach the corners of a decoder.

use proptest::prelude::*;

/// The number of cases of a property: `PROPTEST_CASES` when set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `valid` with up to `max_edits` of `inserts` put at random places (on character
/// boundaries), or, one time in five, an arbitrary short text instead.
pub fn edited(
    valid: String,
    inserts: impl Strategy<Value = String> + Clone + 'static,
    max_edits: usize,
) -> impl Strategy<Value = String> {
    let edits = prop::collection::vec((0.0..1.0f64, inserts), 0..=max_edits);
    prop_oneof![
        4 => edits.prop_map(move |edits| insert_all(&valid, &edits)),
        1 => ".{0,300}",
    ]
}

/// `text` with each `(at, what)` inserted at that fraction of its length.
pub fn insert_all(text: &str, edits: &[(f64, String)]) -> String {
    let mut t = text.to_owned();
    for (at, what) in edits {
        let mut p = ((t.len() as f64) * at) as usize;
        while !t.is_char_boundary(p) {
            p -= 1;
        }
        t.insert_str(p, what);
    }
    t
}
