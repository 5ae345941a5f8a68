//! What the twin reports per window: what Prometheus (cAdvisor, the OpenFaaS gateway) and the
//! functions' own logs would show for the same window on a real cluster.

pub use faasconf_core::telemetry::{FunctionWindow, WindowReport, WorkflowWindow};

/// Nearest-rank percentile (`q` in `[0,1]`) of unsorted samples; 0 for none. Reorders `xs`.
pub fn percentile(xs: &mut [f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1;
    let (_, v, _) = xs.select_nth_unstable_by(rank, f64::total_cmp);
    *v
}

/// Per-function counters of the window in progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct FunctionTally {
    pub requests: u64,
    pub rejections: u64,
    pub rejections_with_room: u64,
    pub oom_failures: u64,
    pub unavailable: u64,
    pub accepted: u64,
    pub latencies: Vec<f64>,
}

/// Workflow counters of the window in progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkflowTally {
    pub latencies: Vec<f64>,
    pub successful: u64,
    /// Requests that entered the workflow in the window.
    pub arrivals: u64,
    /// Integral of the requests in the system over the window, request-seconds.
    pub in_flight_area: f64,
}

/// Requests in the system now, and since when that count holds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct InFlight {
    pub count: u64,
    pub since: f64,
}

impl InFlight {
    /// Adds the area since the last change to `tally`, then moves the count by `delta`.
    pub fn step(&mut self, now: f64, delta: i64, tally: &mut WorkflowTally) {
        tally.in_flight_area += self.count as f64 * (now - self.since).max(0.0);
        self.since = now;
        self.count = self.count.saturating_add_signed(delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut xs: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&mut xs, 0.75), 15.0);
        assert_eq!(percentile(&mut xs, 0.95), 19.0);
        assert_eq!(percentile(&mut [], 0.5), 0.0);
        assert_eq!(percentile(&mut [3.0], 0.95), 3.0);
    }
}
