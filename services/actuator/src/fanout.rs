//! Telemetry fan-out: every subscriber has its own bounded queue, so a slow or vanished one never
//! blocks the others and nothing leaks.
//!
//! - [`Subscribers::offer`] (real clocks, real clusters): a full queue misses the window.
//! - [`Subscribers::deliver`] (virtual clock): waits until every live subscriber took it.
//!
//! A subscriber may ask for lockstep (virtual clock only): see [`Subscribers::lockstep_count`].

use std::sync::Arc;

use faasconf_core::telemetry::WindowReport;
use tokio::sync::{Mutex, Notify, mpsc};

/// Windows a subscriber may have queued before it counts as slow.
pub const SUBSCRIBER_QUEUE: usize = 4;

/// The subscribers of one workflow's telemetry.
pub struct Subscribers {
    workflow: String,
    senders: Mutex<Vec<(mpsc::Sender<Arc<WindowReport>>, bool)>>, // (queue, lockstep)
    subscribed: Notify,
}

impl Subscribers {
    /// No subscribers yet.
    pub fn new(workflow: &str) -> Self {
        Self {
            workflow: workflow.to_owned(),
            senders: Mutex::new(Vec::new()),
            subscribed: Notify::new(),
        }
    }

    /// A new subscriber's window queue (`lockstep`: it decides on every steady window, and a
    /// virtual clock waits for its decision).
    pub async fn subscribe(&self, lockstep: bool) -> mpsc::Receiver<Arc<WindowReport>> {
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_QUEUE);
        self.senders.lock().await.push((sender, lockstep));
        self.count().await;
        self.subscribed.notify_one();
        receiver
    }

    /// Subscribers still listening (the vanished ones are dropped here).
    pub async fn count(&self) -> usize {
        let mut senders = self.senders.lock().await;
        senders.retain(|(s, _)| !s.is_closed());
        metrics::gauge!("faasconf_actuator_subscribers", "workflow" => self.workflow.clone())
            .set(senders.len() as f64);
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
