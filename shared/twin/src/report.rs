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
