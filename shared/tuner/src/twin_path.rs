//! Deciding without a cluster (`RecommendConfig` without a window): the middle configuration
//! runs on the twin at the load, then a few policy steps are taken there, each screened on the
//! twin, and the best of them (QoS met first, then the cheapest) is the answer.

use std::sync::Mutex;

use faasconf_core::cancel::Cancel;
use faasconf_core::rng::Rng;
use faasconf_core::{Qos, Workflow};
use faasconf_ses::SafeExplorer;
use faasconf_training::Model;
use faasconf_twin::{Twin, TwinOptions, Workload};

use crate::error::TunerError;
use crate::load::on_users_scale;
use crate::lock;
use crate::outcomes::Tally;
use crate::planner::{Plan, PlanInput, PlanOptions, propose, screen};
use crate::search::Verdict;

/// Policy steps taken on the twin.
pub const TWIN_STEPS: usize = 3;

/// Screening on the twin path: lighter than a tuning session's (a CI job waits for it).
pub const TWIN_PATH: PlanOptions = PlanOptions {
    candidates: 8,
    random_starts: 0,
    screen_windows: 6,
    screen_seeds: 2,
    refine_budget: 300,
    holdout_seeds: 2,
    holdout_windows: 12,
    screen_pass_rate: 0.85,
    confirm_seeds: 2,
    confirm_windows: 12,
    ..PlanOptions::DEFAULT
};

/// Whether the twin's verdict `candidate` beats `incumbent`: QoS met first, then the cheaper.
pub fn better(candidate: &Verdict, incumbent: &Verdict) -> bool {
    (candidate.qos_met && !incumbent.qos_met)
        || (candidate.qos_met == incumbent.qos_met && candidate.cost < incumbent.cost)
}

/// The best of [`TWIN_STEPS`] screened policy steps on the twin under `load` (closed-loop users
/// or Poisson arrivals; the state and safe exploration see the equivalent users).
/// Polls `cancel` and stops with [`TunerError::Cancelled`] when it is raised.
pub fn decide_on_twin(
    workflow: &Workflow,
    model: &Mutex<Model>,
    explorer: &Mutex<SafeExplorer>,
    load: &Workload,
    qos: &Qos,
    rng: &mut Rng,
    cancel: &Cancel,
) -> Result<Plan, TunerError> {
    let start = workflow.config_from_actions(&vec![[0.5; 4]; workflow.len()])?;
    let mut twin = Twin::new(
        workflow.clone(),
        start,
        load.clone(),
        TwinOptions::default(),
    )?;
    let arrivals_per_second = match load {
        Workload::Poisson {
            requests_per_second,
        } => Some(*requests_per_second),
        _ => None,
    };
    twin.run_window();
    let mut window = twin.run_window();
    let mut best: Option<Plan> = None;
    let mut confirmations = Tally::default();
    // The steps screen at one load on one twin: what one screened, the next need not again.
    let memo = std::sync::Arc::new(crate::memo::Memo::new());
    for _ in 0..TWIN_STEPS {
        if cancel.is_cancelled() {
            return Err(TunerError::Cancelled);
        }
        let scaled = on_users_scale(workflow, &window);
        let input = PlanInput {
            workflow,
            window: &scaled,
            users: scaled.users,
            arrivals_per_second,
            qos,
            incumbent: best.as_ref().map(|b: &Plan| &b.config),
            avoid: &[],
            memo: Some(&memo),
        };
        // Why: the model and the explorer are shared with the service; they are locked for the
        // quick proposal step only, never while the candidates are screened.
        let candidates = {
            let model = lock(model);
            let mut explorer = lock(explorer);
            propose(&input, &model, Some(&mut explorer), &TWIN_PATH, rng)?
        };
        let step = screen(
            &input,
            candidates,
            &mut confirmations,
            rng,
            cancel,
            &TWIN_PATH,
        )?;
        twin.apply_config(step.config.clone())?;
        twin.run_window();
        window = twin.run_window();
        let improves = match (&best, &step.verdict) {
            (None, _) => true,
            (Some(b), Some(v)) => better(v, &b.verdict.unwrap_or(*v)),
            (Some(_), None) => false,
        };
        if improves {
            best = Some(step);
        }
    }
    best.ok_or(TunerError::NoCandidate)
}
