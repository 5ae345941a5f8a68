//! Cooperative cancellation of long work (a twin search, a training job): a shared flag that
//! the work polls between steps, and a guard that raises it when the request that started the
//! work goes away (the caller hung up or its deadline passed, so the handler's future was
//! dropped).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cancellation flag shared between the owner of some work and the work itself.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not raised yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag: the work stops at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the work should stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// A guard that raises this flag when dropped, unless [`CancelOnDrop::disarm`]ed.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }
}

/// Every `Cancel` is equal: a flag is not part of what a value means (options that carry one
/// compare by their settings).
impl PartialEq for Cancel {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Raises its flag when dropped: held by a request handler, it cancels the work the handler
/// started when the handler's future is dropped (client gone, deadline passed).
#[derive(Debug)]
pub struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    /// The work finished: dropping the guard no longer cancels anything.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.0.take() {
            cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_guard_cancels_and_a_disarmed_one_does_not() {
        let cancel = Cancel::new();
        cancel.on_drop().disarm();
        assert!(!cancel.is_cancelled());
        drop(cancel.on_drop());
        assert!(cancel.is_cancelled());
        assert_eq!(Cancel::new(), cancel, "flags do not change equality");
    }
}
