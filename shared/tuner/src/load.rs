//! The load a decision is made for, from what a window measured, in the model the deployment
//! declares ([`LoadModel`]; by default closed-loop users when a closed-loop generator reported
//! them — the paper's setting, the twin's default — otherwise open-loop arrivals at the
//! measured rate, a cluster's real traffic). Screening simulates the load in that model; the
//! policy's state and safe exploration's bands, which are in users, see the equivalent
//! closed-loop users (Little's law, [`WindowReport::closed_loop_users`]).

use std::borrow::Cow;

use faasconf_core::Workflow;
use faasconf_core::telemetry::WindowReport;
use faasconf_twin::Workload;
use faasconf_twin::follow::{LoadModel, workload_of};

/// The load of one decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Closed-loop users (measured, or equivalent to the measured arrivals).
    pub users: u32,
    /// Open loop: Poisson arrivals at this rate (`None`: closed loop at `users`).
    pub arrivals_per_second: Option<f64>,
}

impl Load {
    /// The load `window` measured, in `model` ([`workload_of`]).
    pub fn of(workflow: &Workflow, window: &WindowReport, model: LoadModel) -> Self {
        let think = workflow.platform.user_think_seconds;
        Self {
            users: window.closed_loop_users(think),
            arrivals_per_second: match workload_of(window, model, think) {
                Some(Workload::Poisson {
                    requests_per_second,
                }) => Some(requests_per_second),
                _ => None,
            },
        }
    }
}

/// `window` with its users filled in from its arrivals when a closed-loop generator reported
/// none, so that the state and safe exploration see the load on the scale they were trained on.
pub fn on_users_scale<'a>(workflow: &Workflow, window: &'a WindowReport) -> Cow<'a, WindowReport> {
    if window.users > 0 {
        return Cow::Borrowed(window);
    }
    let mut filled = window.clone();
    filled.users = window.closed_loop_users(workflow.platform.user_think_seconds);
    Cow::Owned(filled)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use faasconf_core::catalog::builtin;

    #[test]
    fn a_decision_screens_the_load_in_the_declared_model() {
        let w = builtin("parallel").unwrap();
        let config = w.config_from_actions(&vec![[0.5; 4]; w.len()]).unwrap();
        let options = faasconf_twin::TwinOptions::default();
        let mut twin = faasconf_twin::Twin::new(
            w.clone(),
            config,
            Workload::ClosedLoop { users: 5 },
            options,
        )
        .unwrap();
        let mut window = twin.run_window();
        window.users = 0;
        window.duration_seconds = 30.0;
        window.workflow.arrivals = 90;
        window.workflow.mean_latency_seconds = 2.0;
        let think = w.platform.user_think_seconds;
        let implied = (3.0 * (2.0 + think)).round() as u32;
        // A cluster's telemetry reports no users: open loop at the measured rate...
        let measured = Load::of(&w, &window, LoadModel::Measured);
        assert_eq!(measured.arrivals_per_second, Some(3.0));
        assert_eq!(
            measured.users, implied,
            "the state sees the equivalent users"
        );
        assert_eq!(Load::of(&w, &window, LoadModel::OpenLoop), measured);
        // ...unless a closed-loop generator is declared: closed loop at the implied users.
        let closed = Load::of(&w, &window, LoadModel::ClosedLoop);
        assert_eq!((closed.users, closed.arrivals_per_second), (implied, None));
        // Users reported: closed loop, unless the traffic is declared open.
        window.users = 12;
        let reported = Load::of(&w, &window, LoadModel::Measured);
        assert_eq!((reported.users, reported.arrivals_per_second), (12, None));
        let open = Load::of(&w, &window, LoadModel::OpenLoop);
        assert_eq!((open.users, open.arrivals_per_second), (12, Some(3.0)));
    }
}
