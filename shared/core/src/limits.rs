//! The limits every caller-supplied count and rate is checked against, defined once, and the
//! clipping of caller input that error messages echo.
//!
//! Each limit bounds the work or memory one request can ask of a service. They are generous for
//! real use (the benchmark's loads are 10-40 users) and small enough that a service answers
//! within its request timeout and cannot be made to allocate without bound. The README's
//! "Limits" table lists them; a request past one is INVALID_ARGUMENT naming the field and the
//! limit.

use std::borrow::Cow;

/// Closed-loop users anywhere a caller sets them (`RecommendConfig`'s load, `SetWorkload`,
/// a trace's `max_users`): the twin simulates every one of them.
pub const MAX_USERS: u32 = 1000;
/// Open-loop arrivals per second a caller may set on the twin (`SetWorkload`). The twin must
/// simulate a window well inside the window's own length at this rate (measured: a 30 s window
/// of `parallel` at 1000 requests/s takes under 0.1 s to simulate, in the debug build).
pub const MAX_REQUESTS_PER_SECOND: f64 = 1000.0;
/// Minutes of a per-minute trace workload.
pub const MAX_TRACE_MINUTES: usize = 100_000;
/// Twin samples one training job may draw.
pub const MAX_TRAINING_SAMPLES: u32 = 50_000;
/// Passes over the samples one training job may ask for.
pub const MAX_TRAINING_EPOCHS: u32 = 1000;
/// Gradient updates one training job may run (epochs x samples / batch, plus its online steps).
pub const MAX_TRAINING_UPDATES: u64 = 100_000;
/// Iterations of one tuning session.
pub const MAX_TUNING_ITERATIONS: u32 = 10_000;
/// Consecutive QoS-missing windows before a session rolls back.
pub const MAX_ROLLBACK_WINDOWS: u32 = 100;

/// Characters of a caller's value an error message repeats; the rest is elided.
pub const ECHO_CHARS: usize = 96;
/// Field violations one error lists; the rest are counted ("and 199990 more").
pub const MAX_LISTED_ERRORS: usize = 20;

/// `text` as an error message may repeat it: at most [`ECHO_CHARS`] characters, then how much
/// was left out.
pub fn clip(text: &str) -> Cow<'_, str> {
    clip_to(text, ECHO_CHARS)
}

/// `text` cut after `chars` characters, with how many bytes were left out.
pub fn clip_to(text: &str, chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(chars) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!(
            "{}... ({} more bytes)",
            &text[..end],
            text.len() - end
        )),
    }
}

/// `{text:?}` clipped: a caller's value quoted in an error message.
pub fn quoted(text: &str) -> String {
    format!("{:?}", clip(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_on_a_character() {
        assert_eq!(clip("resnet"), "resnet");
        let long = "é".repeat(1000);
        let cut = clip(&long);
        assert!(cut.starts_with(&"é".repeat(ECHO_CHARS)));
        assert!(cut.ends_with(&format!("({} more bytes)", 2 * (1000 - ECHO_CHARS))));
        assert!(cut.len() < 2 * ECHO_CHARS + 40);
        assert_eq!(quoted("a\"b"), "\"a\\\"b\"");
    }
}
