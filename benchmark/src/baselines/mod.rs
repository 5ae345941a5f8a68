//! The baselines faasconf is compared with, each behind the optimiser interface
//! ([`faasconf_core::optimiser::Optimiser`]) faasconf's own tuner implements, each named for
//! the method it re-implements.
//!
//! - [`random`] — uniform random search over the normalised configuration space.
//! - [`bayesian`] — `aquatope` (constrained noisy EI, batches of 3, outlier filter) and `rambo`
//!   (multi-objective, Pareto front of cost vs QoS).
//! - [`firm`] — critical-path extraction, then DDPG on CPU, memory and replicas.
//! - [`gp`] — Gaussian-process surrogates (egobox-gp) for the Bayesian-optimisation ones.
//! - [`bo`] — their acquisition cores: Aquatope's constrained noisy EI, RAMBO's EHVI.

pub mod bayesian;
pub mod bo;
pub mod firm;
pub mod gp;
pub mod random;

pub use bayesian::{BayesianOptions, BayesianSearch};
pub use firm::{Firm, FirmOptions};
pub use random::RandomSearch;
