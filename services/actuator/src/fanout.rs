//! Telemetry fan-out: every subscriber has its own bounded queue, so a slow or vanished one never
//! blocks the others and nothing leaks.
//!
//! - [`Subscribers::offer`] (real clocks, real clusters): a full queue misses the window.
//! - [`Subscribers::deliver`] (virtual clock): waits until every live subscriber took it.
//!
//! A subscriber may ask for lockstep (virtual clock only): see [`Subscribers::lockstep_count`].
//! At most [`MAX_SUBSCRIBERS`] streams per workflow are open at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use faasconf_core::telemetry::WindowReport;
use tokio::sync::{Mutex, Notify, mpsc};

/// Windows a subscriber may have queued before it counts as slow.
pub const SUBSCRIBER_QUEUE: usize = 4;
/// Telemetry streams of one workflow open at once; past it a subscription is refused
/// (RESOURCE_EXHAUSTED), so no caller can pile up queues.
pub const MAX_SUBSCRIBERS: usize = 64;

/// The subscribers of one workflow's telemetry.
pub struct Subscribers {
    workflow: String,
    senders: Mutex<Vec<(mpsc::Sender<Arc<WindowReport>>, bool)>>, // (queue, lockstep)
    subscribed: Notify,
    /// Streams open now (a [`Subscription`]'s guard counts itself out when dropped).
    live: Arc<AtomicUsize>,
}

/// A subscriber's window queue and the guard that counts it as open until dropped.
pub struct Subscription {
    /// The windows.
    pub receiver: mpsc::Receiver<Arc<WindowReport>>,
    /// Keep it with the stream: dropping it counts the subscriber out (and updates the
    /// `faasconf_actuator_subscribers` gauge at once).
    pub guard: LiveGuard,
}

impl Subscription {
    /// The next window; `None` once the backend closed the stream.
    #[cfg(test)]
    pub async fn recv(&mut self) -> Option<Arc<WindowReport>> {
        self.receiver.recv().await
    }
}

/// Counts one open stream; see [`Subscription`].
pub struct LiveGuard {
    workflow: String,
    live: Arc<AtomicUsize>,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let now = self.live.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        gauge(&self.workflow, now);
    }
}

fn gauge(workflow: &str, live: usize) {
    metrics::gauge!("faasconf_actuator_subscribers", "workflow" => workflow.to_owned())
        .set(live as f64);
}

impl Subscribers {
    /// No subscribers yet.
    pub fn new(workflow: &str) -> Self {
        Self {
            workflow: workflow.to_owned(),
            senders: Mutex::new(Vec::new()),
            subscribed: Notify::new(),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A new subscriber's window queue (`lockstep`: it decides on every steady window, and a
    /// virtual clock waits for its decision); `None` when [`MAX_SUBSCRIBERS`] are open.
    pub async fn subscribe(&self, lockstep: bool) -> Option<Subscription> {
        let reserved = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_SUBSCRIBERS).then_some(n + 1)
            });
        let now = reserved.ok()? + 1;
        let guard = LiveGuard {
            workflow: self.workflow.clone(),
            live: self.live.clone(),
        };
        gauge(&self.workflow, now);
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_QUEUE);
        self.senders.lock().await.push((sender, lockstep));
        self.subscribed.notify_one();
        Some(Subscription { receiver, guard })
    }

    /// Subscribers still listening (the vanished ones are dropped here).
    pub async fn count(&self) -> usize {
        let mut senders = self.senders.lock().await;
        senders.retain(|(s, _)| !s.is_closed());
        senders.len()
    }

    /// Live subscribers in lockstep.
    pub async fn lockstep_count(&self) -> usize {
        self.senders
            .lock()
            .await
            .iter()
            .filter(|(s, lockstep)| *lockstep && !s.is_closed())
            .count()
    }

    /// Resolves when someone subscribes.
    pub async fn subscribed(&self) {
        self.subscribed.notified().await;
    }

    /// Hands the window to every subscriber with room; a full one misses it.
    pub async fn offer(&self, window: &Arc<WindowReport>) {
        let mut senders = self.senders.lock().await;
        senders.retain(|(s, _)| match s.try_send(window.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!(workflow = %self.workflow, "slow subscriber missed a window");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Waits until every live subscriber has taken the window.
    pub async fn deliver(&self, window: &Arc<WindowReport>) {
        let senders: Vec<_> = self
            .senders
            .lock()
            .await
            .iter()
            .map(|(s, _)| s.clone())
            .collect();
        for sender in senders {
            // A subscriber that went away fails at once; the next count drops it.
            let _ = sender.send(window.clone()).await;
        }
    }

    /// Ends every stream.
    pub async fn close(&self) {
        self.senders.lock().await.clear();
        let _ = self.count().await;
    }
}
