//! The load a decision is made for, from what a window measured: closed-loop users when a
//! closed-loop generator reported them (the paper's setting, the twin's default), otherwise
//! open-loop arrivals at the measured rate (a cluster's real traffic). Screening simulates the
//! load in its own model; the policy's state and safe exploration's bands, which are in users,
//! see the equivalent closed-loop users (Little's law, [`WindowReport::closed_loop_users`]).

use std::borrow::Cow;

use faasconf_core::Workflow;
use faasconf_core::telemetry::WindowReport;
use faasconf_twin::Workload;
use faasconf_twin::follow::workload_of;

/// The load of one decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Closed-loop users (measured, or equivalent to the measured arrivals).
    pub users: u32,
    /// Open loop: Poisson arrivals at this rate (`None`: closed loop at `users`).
    pub arrivals_per_second: Option<f64>,
}

impl Load {
    /// The load `window` measured (its model: [`workload_of`]).
    pub fn of(workflow: &Workflow, window: &WindowReport) -> Self {
        Self {
            users: window.closed_loop_users(workflow.platform.user_think_seconds),
            arrivals_per_second: match workload_of(window) {
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
