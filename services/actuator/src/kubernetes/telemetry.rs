//! The backend's telemetry: one window per period of wall time, measured by Prometheus and
//! stamped with the configuration (and its version) the cluster serves at the window's end, read
//! from the cluster each time (a change made outside the actuator is a new version, and the
//! window is transient).

use std::sync::Arc;
use std::time::SystemTime;

use faasconf_core::WorkflowConfig;
use faasconf_core::telemetry::WindowReport;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{KubernetesBackend, Managed};

impl KubernetesBackend {
    /// One telemetry window per `settings.window` of wall time, offered to every subscriber.
    pub(super) async fn drive_telemetry(
        self: Arc<Self>,
        m: Arc<Managed>,
        source: Arc<faasconf_prometheus::PrometheusSource>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let window = self.settings.window;
        let mut index = 0;
        // Windows tile time: each starts where the previous ended, however long reporting took.
        let mut ticks = tokio::time::interval_at(Instant::now() + window, window);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let tick = tokio::select! {
                tick = ticks.tick() => tick,
                _ = shutdown.changed() => break,
            };
            let end = SystemTime::now() - tick.elapsed();
            let started = tick - window;
            let measured = match source.window(&m.workflow, end, window).await {
                Ok(measured) => measured,
                Err(e) => {
                    tracing::warn!(workflow = %m.workflow.name, error = %e, "telemetry window skipped");
                    metrics::counter!("faasconf_actuator_telemetry_errors_total", "workflow" => m.workflow.name.clone()).increment(1);
                    continue;
                }
            };
            let (config, version, transient) = {
                let mut state = m.state.lock().await;
                // What runs now, not what was read once: a foreign change is seen here.
                if let Err(e) = self.reconcile(&m.workflow, &mut state).await {
                    tracing::warn!(workflow = %m.workflow.name, error = %e, "configuration unreadable");
                }
                // A change inside the window, or after its end but before this report (whose
                // version is then already the new one), makes it transient.
                let transient = state.changed_at.is_some_and(|t| t > started);
                (
                    state
                        .config
                        .clone()
                        .unwrap_or_else(|| WorkflowConfig(Vec::new())),
                    state.version.unwrap_or(0),
                    transient,
                )
            };
            let mut workflow_window = measured.workflow;
            workflow_window.cost = if config.0.is_empty() {
                0.0
            } else {
                config.cost()
            };
            let report = WindowReport {
                index,
                start_seconds: end
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0)
                    - window.as_secs_f64(),
                duration_seconds: window.as_secs_f64(),
                config_version: version,
                transient,
                config,
                users: 0,
                workflow: workflow_window,
                functions: measured.functions,
            };
            index += 1;
            crate::service_metrics::record_window(&m.workflow, &report);
            m.subscribers.offer(&Arc::new(report)).await;
        }
        m.subscribers.close().await;
    }
}
