use faasconf_core::catalog::builtin;
use proptest::prelude::*;

use super::*;

fn sample(users: u32, level: f64, workflow: &Workflow, qos_met: bool) -> Sample {
    let actions = vec![[level; 4]; workflow.len()];
    Sample {
        users,
        price: price(workflow, &actions).unwrap(),
        actions,
        qos_met,
    }
}

#[test]
fn the_band_is_k_sigma_around_the_cheapest_fifth_of_what_met_qos() {
    let w = builtin("parallel").unwrap();
    // Ten QoS-meeting samples at levels 0.1..1.0 and cheap failures that must not count.
    let mut history: Vec<Sample> = (1..=10)
        .map(|i| sample(20, f64::from(i) / 10.0, &w, true))
        .collect();
    history.push(sample(20, 0.0, &w, false));
    let (band, safe) = derive_band(&history, 20, &SesConfig::default()).unwrap();
    let p1 = price(&w, &[[0.1; 4]; 6]).unwrap();
    let p2 = price(&w, &[[0.2; 4]; 6]).unwrap();
    assert_eq!(band.support, 2);
    assert!((band.mean - (p1 + p2) / 2.0).abs() < 1e-9);
    assert!((band.sd - (p2 - p1) / 2.0).abs() < 1e-9);
    assert!((band.upper - band.mean - 2.0 * band.sd).abs() < 1e-9);
    assert_eq!(safe.len(), 2);
}

#[test]
fn in_band_proposals_pass_and_others_are_replaced_near_a_safe_configuration() {
    let w = builtin("parallel").unwrap();
    let history: Vec<Sample> = (1..=10)
        .map(|i| sample(20, f64::from(i) / 10.0, &w, true))
        .collect();
    let mut ses = SafeExplorer::new(SesConfig::default(), history, 1);
    let inside = ses.filter(&w, 20, vec![[0.15; 4]; 6]).unwrap();
    assert!(!inside.replaced);
    let outside = ses.filter(&w, 20, vec![[0.9; 4]; 6]).unwrap();
    assert!(outside.replaced && outside.proposed_price > outside.band.upper);
    // Near one of the safe configurations (levels 0.1 or 0.2), within a few noise sds.
    assert!(
        outside
            .actions
            .iter()
            .flatten()
            .all(|x| (0.0..=0.45).contains(x)),
        "{:?}",
        outside.actions
    );
}

#[test]
fn a_copy_for_an_answer_replaces_alike_and_leaves_the_shared_stream_alone() {
    let w = builtin("parallel").unwrap();
    let history: Vec<Sample> = (1..=10)
        .map(|i| sample(20, f64::from(i) / 10.0, &w, true))
        .collect();
    let mut shared = SafeExplorer::new(SesConfig::default(), history, 1);
    let mut untouched = shared.clone();
    let outside = || vec![[0.9; 4]; 6];
    let answer = |shared: &SafeExplorer| shared.for_answer(7).filter(&w, 20, outside()).unwrap();
    let (a, b) = (answer(&shared), answer(&shared));
    assert!(a.replaced);
    assert_eq!(a, b, "identical requests, identical answers");
    assert_ne!(
        shared.for_answer(8).filter(&w, 20, outside()).unwrap(),
        a,
        "another seed draws elsewhere"
    );
    assert_eq!(
        shared.filter(&w, 20, outside()).unwrap(),
        untouched.filter(&w, 20, outside()).unwrap(),
        "answers did not move the shared stream"
    );
}

#[test]
fn unseen_workloads_use_the_most_similar_band() {
    let w = builtin("parallel").unwrap();
    let history = vec![sample(10, 0.2, &w, true), sample(30, 0.8, &w, true)];
    let ses = SafeExplorer::new(SesConfig::default(), history, 1);
    assert_eq!(ses.band_for(12).unwrap().users, 10);
    assert_eq!(ses.band_for(27).unwrap().users, 30);
    assert_eq!(
        ses.band_for(20).unwrap().users,
        10,
        "ties go to the lighter workload"
    );
    let empty = SafeExplorer::new(SesConfig::default(), vec![sample(10, 0.2, &w, false)], 1);
    assert!(empty.band_for(10).is_none());
    assert_eq!(
        empty.clone().filter(&w, 10, vec![[0.5; 4]; 6]),
        Err(SesError::NoSafeHistory)
    );
}

#[test]
fn violations_rederive_the_band_from_recent_samples() {
    let w = builtin("parallel").unwrap();
    let config = SesConfig {
        recent: 4,
        ..SesConfig::default()
    };
    let mut ses = SafeExplorer::new(config, vec![sample(20, 0.1, &w, true)], 1);
    let before = *ses.band_for(20).unwrap();
    // The load got heavier: cheap configurations now fail, dearer ones meet QoS.
    assert!(!ses.observe(sample(20, 0.6, &w, true)));
    assert!(!ses.observe(sample(20, 0.1, &w, false)));
    assert!(!ses.observe(sample(20, 0.1, &w, false)));
    assert!(
        ses.observe(sample(20, 0.1, &w, false)),
        "the third violation re-derives"
    );
    let after = *ses.band_for(20).unwrap();
    assert!(after.mean > before.mean, "{before:?} -> {after:?}");
}

proptest! {
    #[test]
    fn replacements_stay_in_the_normalised_space_and_bands_are_ordered(levels in proptest::collection::vec(0.0f64..1.0, 1..30), proposal in 0.0f64..1.0, seed in 0u64..1000) {
        let w = builtin("parallel").unwrap();
        let history: Vec<Sample> = levels.iter().map(|&l| sample(20, l, &w, true)).collect();
        let mut ses = SafeExplorer::new(SesConfig::default(), history, seed);
        let band = *ses.band_for(20).unwrap();
        prop_assert!(band.lower <= band.mean && band.mean <= band.upper);
        let out = ses.filter(&w, 20, vec![[proposal; 4]; 6]).unwrap();
        prop_assert!(out.actions.iter().flatten().all(|x| (0.0..=1.0).contains(x)));
        prop_assert_eq!(out.replaced, !band.contains(out.proposed_price));
    }
}
