//! `faasconf-tuner`: faasconf's online method, as a library with no service or wire types.
//!
//! The tuning service (`faasconf-policy`), the twin path of `RecommendConfig` and the benchmark
//! all decide through this crate; a change to how a decision is made lands here.
//!
//! - [`tuner`] — the method behind the optimiser interface the baselines share: learn from a
//!   window (replay, online updates, safe exploration's history, the rollback guard), then
//!   decide the next configuration; the twin it screens on follows the cluster (refitted to
//!   the windows it observes, `faasconf_twin::follow`).
//! - [`tuning_loop`] — the one tuning loop over an environment (observe, judge, propose,
//!   apply, record), with the QoS verdict and reward, "best", convergence and the iteration
//!   record defined once; [`twin_env`] — the in-process twin as its environment.
//! - [`planner`] — state -> configuration: the policy's decision, exploration around it, the
//!   safe-exploration filter and screening on the twin, in steps.
//! - [`memo`] — twin evaluations remembered across a session's decisions.
//! - [`search`] — steady-state evaluation on the twin, the moves and descents of the search,
//!   and the twin's [`Verdict`] on one configuration.
//! - [`oracle`] — the reference search the benchmark judges every method against: the same
//!   evaluation and descent, from random starts, walked back through held-out checks.
//! - [`bests`] — what the cluster did with each configuration a session applied: the best,
//!   and what not to propose again.
//! - [`outcomes`] — what a session learns of the twin's confirmation windows and predictions.
//! - [`twin_path`] — deciding without a cluster: a few screened policy steps on the twin.
//! - [`fallback`] — when the twin stays wrong: grow the bottleneck the telemetry shows.
//! - [`history`] — safe exploration's history from stored observations.
//! - [`load`] — the load a decision is made for: measured users, or measured arrivals.
//! - [`error`] — [`TunerError`].

pub mod bests;
pub mod error;
pub mod fallback;
pub mod forecast;
pub mod history;
pub mod load;
pub mod memo;
pub mod oracle;
pub mod outcomes;
pub mod planner;
pub mod search;
pub mod tuner;
pub mod tuning_loop;
pub mod twin_env;
pub mod twin_path;

use std::sync::{Mutex, MutexGuard};

pub use bests::{BEST_HOLDS, Best, Bests};
pub use error::TunerError;
pub use history::safe_history;
pub use planner::budget::DEFAULT_WORK_BUDGET;
pub use planner::{Candidates, Plan, PlanOptions, plan, propose, screen};
pub use search::{Evaluation, Steady, Verdict};
pub use tuner::{Tuner, TunerOptions};
pub use tuning_loop::{Environment, Iteration, Judged, LoopOptions, Method};

/// Locks a mutex, recovering the data of a panicked holder (its writes are whole values).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
