//! Twin evaluations remembered across a session's decisions.
//!
//! The twin is deterministic given its seed, so an evaluation of the same configuration on the
//! same twin, load, seeds and windows gives the same figures every time. Consecutive decisions
//! of a session screen much the same ground (the descents start from the incumbent, the
//! held-out check uses fixed seeds): a [`Memo`] hands back what was simulated before instead of
//! simulating it again. What a decision chooses does not change; only the windows simulated do.
//!
//! A memo holds the evaluations of one twin: it hands back nothing for another, and forgets
//! what it holds when asked to remember figures of another (a refit the session adopted).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use faasconf_core::{Workflow, WorkflowConfig};

use crate::lock;
use crate::search::{Evaluation, Steady};

/// Remembered function configurations (entries times functions) before a memo starts afresh:
/// bounds its memory at any workflow size (16 bytes each, plus about 80 per entry for the
/// figures and the table: about 6 MB for a 6-function workflow's 33 000 entries).
const MAX_FUNCTION_CONFIGS: usize = 200_000;

/// Contexts remembered (a session's confirmations draw fresh seeds every decision: one each).
const MAX_CONTEXTS: usize = 1024;

/// What an evaluation's figures depend on besides the twin and the configuration: the load,
/// the seeds and windows, the QoS windows are judged against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Context {
    users: u32,
    arrivals_bits: Option<u64>,
    windows: u32,
    seeds: Vec<u64>,
    window_bits: u64,
    qos_bits: (u64, u64),
}

impl Context {
    fn of(evaluation: &Evaluation) -> Self {
        Self {
            users: evaluation.users,
            arrivals_bits: evaluation.arrivals_per_second.map(f64::to_bits),
            windows: evaluation.windows,
            seeds: evaluation.seeds.clone(),
            window_bits: evaluation.window_seconds.to_bits(),
            qos_bits: (
                evaluation.qos.mean_latency_seconds.to_bits(),
                evaluation.qos.min_success_ratio.to_bits(),
            ),
        }
    }
}

#[derive(Debug, Default)]
struct Entries {
    /// The twin the entries were simulated on.
    twin: Option<Workflow>,
    /// Each context seen, numbered (its entries may have been dropped to bound the memory).
    contexts: HashMap<Context, usize>,
    /// Per context number and give-up bar (an evaluation given up after a number of missed
    /// windows reports the windows run until then): the figures of each configuration.
    figures: HashMap<(usize, Option<u32>), HashMap<WorkflowConfig, Steady>>,
    /// Entries held.
    len: usize,
    /// Function configurations held (entries x functions).
    held: usize,
}

impl Entries {
    /// Forgets every entry (and, with `contexts`, every context too).
    fn clear(&mut self, contexts: bool) {
        self.figures.clear();
        (self.len, self.held) = (0, 0);
        if contexts {
            self.contexts.clear();
        }
    }
}

/// Evaluations of one twin, shared by a session's decisions (see the module doc).
pub struct Memo {
    entries: Mutex<Entries>,
    /// Function configurations held before the memo starts afresh.
    capacity: usize,
    /// Steady windows handed back instead of simulated, since the memo was made.
    reused_windows: AtomicU64,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("entries", &self.len())
            .field("reused_windows", &self.reused_windows())
            .finish()
    }
}

/// Every memo is equal: what is remembered is not part of what an evaluation means (options
/// that carry one compare by their settings).
impl PartialEq for Memo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Default for Memo {
    fn default() -> Self {
        Self::with_capacity(MAX_FUNCTION_CONFIGS)
    }
}

impl Memo {
    /// An empty memo.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty memo that starts afresh once it would hold more than `function_configs`
    /// function configurations (entries times functions).
    pub fn with_capacity(function_configs: usize) -> Self {
        Self {
            entries: Mutex::default(),
            capacity: function_configs,
            reused_windows: AtomicU64::new(0),
        }
    }

    /// Steady windows handed back instead of simulated so far.
    pub fn reused_windows(&self) -> u64 {
        self.reused_windows.load(Ordering::Relaxed)
    }

    /// Whether configurations were evaluated on `twin` under `evaluation`'s load, seeds,
    /// windows and QoS before: a decision that screens where an earlier one did (same twin, same
    /// load) finds much of its ground remembered.
    pub fn screened_before(&self, twin: &Workflow, evaluation: &Evaluation) -> bool {
        let entries = lock(&self.entries);
        entries.twin.as_ref() == Some(twin)
            && entries.contexts.contains_key(&Context::of(evaluation))
    }

    /// Entries remembered.
    pub fn len(&self) -> usize {
        lock(&self.entries).len
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The figures of `config` on `twin` under `evaluation` given up after `misses`, when
    /// remembered.
    pub(crate) fn get(
        &self,
        twin: &Workflow,
        evaluation: &Evaluation,
        config: &WorkflowConfig,
        misses: Option<u32>,
    ) -> Option<Steady> {
        let found = {
            let entries = lock(&self.entries);
            if entries.twin.as_ref() != Some(twin) {
                return None;
            }
            let context = *entries.contexts.get(&Context::of(evaluation))?;
            entries
                .figures
                .get(&(context, misses))
                .and_then(|by_config| by_config.get(config))
                .copied()
        };
        if let Some(s) = found {
            self.reused_windows
                .fetch_add(u64::from(s.windows), Ordering::Relaxed);
        }
        found
    }

    /// Remembers figures simulated on `twin` (never those of a cancelled evaluation),
    /// forgetting everything simulated on another twin.
    pub(crate) fn put(
        &self,
        twin: &Workflow,
        evaluation: &Evaluation,
        config: &WorkflowConfig,
        misses: Option<u32>,
        steady: Steady,
    ) {
        let mut entries = lock(&self.entries);
        if entries.twin.as_ref() != Some(twin) {
            entries.twin = Some(twin.clone());
            entries.clear(true);
        }
        let functions = config.0.len().max(1);
        if entries.held + functions > self.capacity {
            entries.clear(false);
        }
        let context = Context::of(evaluation);
        let number = match entries.contexts.get(&context) {
            Some(&number) => number,
            None => {
                if entries.contexts.len() >= MAX_CONTEXTS {
                    entries.clear(true);
                }
                let number = entries.contexts.len();
                entries.contexts.insert(context, number);
                number
            }
        };
        let added = entries
            .figures
            .entry((number, misses))
            .or_default()
            .insert(config.clone(), steady)
            .is_none();
        if added {
            entries.len += 1;
            entries.held += functions;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faasconf_core::Qos;
    use faasconf_core::catalog::builtin;

    use super::*;

    fn evaluation(memo: Option<Arc<Memo>>) -> Evaluation {
        Evaluation {
            users: 10,
            arrivals_per_second: None,
            windows: 3,
            seeds: vec![1, 2],
            window_seconds: 30.0,
            threads: 1,
            qos: Qos::default(),
            cancel: Default::default(),
            memo,
        }
    }

    /// `parallel`, and its configuration with every function at `actions`.
    fn parallel_with(actions: [f64; 4]) -> (Workflow, WorkflowConfig) {
        let workflow = builtin("parallel").unwrap();
        let config = workflow
            .config_from_actions(&vec![actions; workflow.len()])
            .unwrap();
        (workflow, config)
    }

    #[test]
    fn a_remembered_evaluation_equals_a_simulated_one_and_a_new_twin_forgets_it() {
        let (workflow, config) = parallel_with([0.9, 0.5, 0.6, 0.6]);
        let memo = Arc::new(Memo::new());
        let remembered = evaluation(Some(memo.clone()));
        let first = remembered.steady(&workflow, &config);
        assert_eq!(memo.len(), 1);
        assert_eq!(memo.reused_windows(), 0);
        assert!(memo.screened_before(&workflow, &remembered));
        let again = remembered.steady(&workflow, &config);
        assert_eq!(again, first);
        assert_eq!(memo.reused_windows(), u64::from(first.windows));
        assert_eq!(evaluation(None).steady(&workflow, &config), first);
        // Another load is another entry.
        let heavier = Evaluation {
            users: 20,
            ..remembered.clone()
        };
        assert!(!memo.screened_before(&workflow, &heavier));
        heavier.steady(&workflow, &config);
        assert_eq!(memo.len(), 2);
        // A refitted twin: nothing simulated on the old one is handed back, and what it
        // simulates replaces what the memo held.
        let mut slower = workflow.clone();
        slower.functions[0].profile.cpu_core_seconds *= 1.5;
        let reused = memo.reused_windows();
        let on_slower = remembered.steady(&slower, &config);
        assert_eq!(memo.reused_windows(), reused);
        assert!(!memo.screened_before(&workflow, &remembered));
        assert!(memo.screened_before(&slower, &remembered));
        assert_ne!(on_slower, first);
        assert_eq!(on_slower, evaluation(None).steady(&slower, &config));
        assert_eq!(memo.len(), 1);
    }

    #[test]
    fn a_cancelled_evaluation_is_not_remembered() {
        let (workflow, config) = parallel_with([0.9, 0.5, 0.6, 0.6]);
        let memo = Arc::new(Memo::new());
        let e = evaluation(Some(memo.clone()));
        e.cancel.cancel();
        e.steady(&workflow, &config);
        assert!(memo.is_empty());
    }

    #[test]
    fn a_full_memo_starts_afresh_and_still_knows_where_it_screened() {
        let workflow = builtin("parallel").unwrap();
        let configs: Vec<WorkflowConfig> = [0.5, 0.6, 0.7]
            .iter()
            .map(|&a| {
                workflow
                    .config_from_actions(&vec![[a; 4]; workflow.len()])
                    .unwrap()
            })
            .collect();
        // Room for two entries of the workflow's functions.
        let memo = Arc::new(Memo::with_capacity(2 * workflow.len()));
        let e = evaluation(Some(memo.clone()));
        e.steady(&workflow, &configs[0]);
        e.steady(&workflow, &configs[1]);
        assert_eq!(memo.len(), 2);
        e.steady(&workflow, &configs[1]);
        assert_eq!(memo.len(), 2, "a remembered one is not added again");
        e.steady(&workflow, &configs[2]);
        assert_eq!(memo.len(), 1, "the third one starts it afresh");
        assert!(memo.screened_before(&workflow, &e));
        let reused = memo.reused_windows();
        e.steady(&workflow, &configs[0]);
        assert_eq!(
            memo.reused_windows(),
            reused,
            "what was dropped is simulated again"
        );
    }
}
