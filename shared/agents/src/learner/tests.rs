use super::*;
use crate::config::{Algorithm, Scoring};

/// A chain of three functions; function j's best action is `TARGETS[j]` on every knob.
const TARGETS: [f32; 3] = [0.2, 0.5, 0.8];

fn chain() -> Vec<Vec<u8>> {
    vec![vec![0, 1, 0], vec![1, 0, 1], vec![0, 1, 0]]
}

fn config(algorithm: Algorithm) -> AgentConfig {
    AgentConfig::new(2)
        .with_algorithm(algorithm)
        .with_learning_rate(1e-3)
        .with_critic_learning_rate(Some(1e-2))
        .with_gamma(0.0)
        .with_seed(7)
        .with_batch_size(32)
}

/// One-step episodes: reward = -mean squared distance of every knob to its function's target.
fn batch(rng: &mut Rng, learner: &Learner, len: usize) -> Batch {
    let mut b = Batch::default();
    for _ in 0..len {
        let states: Vec<f32> = (0..3 * 2).map(|_| rng.uniform() as f32).collect();
        let actions: Vec<f32> = (0..3 * 4).map(|_| rng.uniform() as f32).collect();
        let reward = -actions
            .iter()
            .enumerate()
            .map(|(i, a)| (a - TARGETS[i / 4]).powi(2))
            .sum::<f32>()
            / 12.0;
        b.next_states
            .extend((0..3 * 2).map(|_| rng.uniform() as f32));
        b.states.extend(states);
        b.actions.extend(actions);
        b.rewards.push(reward);
    }
    assert_eq!(learner.functions(), 3);
    b
}

fn distance(learner: &Learner) -> f32 {
    let d = learner.act(&[0.5; 6]).unwrap();
    d.actions
        .iter()
        .enumerate()
        .map(|(i, a)| (a - TARGETS[i / 4]).abs())
        .sum::<f32>()
        / 12.0
}

#[test]
fn agents_learn_function_specific_actions() {
    for algorithm in Algorithm::ALL {
        let mut learner = Learner::new(config(algorithm), &chain(), Device::flex()).unwrap();
        let mut rng = Rng::new(3);
        let before = distance(&learner);
        let mut first = None;
        let mut last = 0.0;
        // DDPG on this toy needs the critic to be right before the actor settles: about 1500
        // updates (observed: AttMF 0.217 -> 0.053, MF 0.215 -> 0.072 after 2000).
        for _ in 0..2000 {
            let b = batch(&mut rng, &learner, 32);
            let losses = learner.update(&b).unwrap();
            first.get_or_insert(losses.critic);
            last = losses.critic;
        }
        let after = distance(&learner);
        eprintln!("{algorithm:?}: mean distance to the targets {before} -> {after}");
        // The ablations see more inputs (maddpg's critic the whole workflow, ddpg one flattened
        // row) and learn this toy more slowly.
        let bar = if matches!(algorithm, Algorithm::AttMf | Algorithm::Mf) {
            0.5
        } else {
            0.85
        };
        assert!(
            after < bar * before,
            "{algorithm:?}: mean distance to the targets {before} -> {after}"
        );
        assert!(
            last < first.unwrap(),
            "{algorithm:?}: critic loss {first:?} -> {last}"
        );
    }
}

#[test]
fn the_actor_imitates_qos_meeting_actions_when_asked() {
    // Flat rewards give the actor no direction of their own; the imitated actions are all 0.9.
    let gap = |imitation: f64| {
        let mut learner = Learner::new(
            config(Algorithm::AttMf).with_imitation(imitation),
            &chain(),
            Device::flex(),
        )
        .unwrap();
        let gap = |l: &Learner| {
            let d = l.act(&[0.5; 6]).unwrap();
            d.actions.iter().map(|a| (a - 0.9).abs()).sum::<f32>() / 12.0
        };
        let before = gap(&learner);
        let mut rng = Rng::new(5);
        for _ in 0..600 {
            let mut b = batch(&mut rng, &learner, 16);
            b.rewards.iter_mut().for_each(|r| *r = 0.0);
            b.actions.iter_mut().for_each(|a| *a = 0.9);
            b.imitate = vec![1.0; 16];
            learner.update(&b).unwrap();
        }
        (before, gap(&learner))
    };
    // Q is divided by its mean magnitude, so even a flat critic pulls with weight 1: the gap
    // settles near 0.25 at weight 2.5 and near 0.14 at 10 (observed, from 0.41).
    let (before, after) = gap(10.0);
    eprintln!("imitating: gap {before} -> {after}");
    assert!(after < 0.45 * before, "imitating: gap {before} -> {after}");
    let (before, ignored) = gap(0.0);
    eprintln!("not imitating: gap {before} -> {ignored}");
    assert!(
        ignored > 0.5 * before,
        "weight 0 ignores the imitation weights: gap {before} -> {ignored}"
    );
}

#[test]
fn decisions_carry_attention_rows_that_sum_to_one() {
    for scoring in [Scoring::SquaredMasked, Scoring::MaskedSoftmax] {
        let learner = Learner::new(
            config(Algorithm::AttMf).with_scoring(scoring),
            &chain(),
            Device::flex(),
        )
        .unwrap();
        let d = learner.act(&[0.1, 0.9, 0.4, 0.3, 0.7, 0.2]).unwrap();
        assert_eq!(d.actions.len(), 12);
        assert!(d.actions.iter().all(|a| (0.0..=1.0).contains(a)));
        for row in d.weights.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
        }
        assert_eq!(d.weights[2], 0.0, "function 0 does not see function 2");
    }
}

#[test]
fn exploration_noise_is_seeded_bounded_and_decays() {
    let mut a = Learner::new(config(Algorithm::AttMf), &chain(), Device::flex()).unwrap();
    let mut b = Learner::new(config(Algorithm::AttMf), &chain(), Device::flex()).unwrap();
    let (x, y) = (a.explore(&[0.5; 6]).unwrap(), b.explore(&[0.5; 6]).unwrap());
    assert_eq!(x, y, "same seed, same decision");
    assert_ne!(
        x.actions,
        a.act(&[0.5; 6]).unwrap().actions,
        "noise was added"
    );
    let noise = a.noise();
    let mut rng = Rng::new(1);
    let batch = batch(&mut rng, &a, 8);
    a.update(&batch).unwrap();
    assert!(a.noise() < noise);
}

#[test]
fn bad_inputs_name_the_field() {
    assert!(matches!(
        Learner::new(
            config(Algorithm::AttMf),
            &[vec![0, 1], vec![1]],
            Device::flex()
        ),
        Err(Error::Invalid {
            field: "adjacency",
            ..
        })
    ));
    let mut learner = Learner::new(config(Algorithm::AttMf), &chain(), Device::flex()).unwrap();
    assert!(matches!(
        learner.act(&[0.5; 5]),
        Err(Error::Invalid {
            field: "states",
            ..
        })
    ));
    let mut rng = Rng::new(1);
    let mut b = batch(&mut rng, &learner, 4);
    b.rewards[2] = f32::NAN;
    assert!(matches!(
        learner.update(&b),
        Err(Error::Invalid {
            field: "rewards",
            ..
        })
    ));
    let mut imitating = Learner::new(
        config(Algorithm::AttMf).with_imitation(1.0),
        &chain(),
        Device::flex(),
    )
    .unwrap();
    let mut b = batch(&mut rng, &imitating, 4);
    b.imitate = vec![1.0; 3];
    assert!(matches!(
        imitating.update(&b),
        Err(Error::Invalid {
            field: "imitate",
            ..
        })
    ));
}

#[test]
fn checkpoints_restore_the_same_decisions_and_progress() {
    let dir = std::env::temp_dir().join(format!("faasconf-agents-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for algorithm in Algorithm::ALL {
        let mut learner = Learner::new(config(algorithm), &chain(), Device::flex()).unwrap();
        let mut rng = Rng::new(2);
        for _ in 0..3 {
            let b = batch(&mut rng, &learner, 8);
            learner.update(&b).unwrap();
        }
        let path = dir.join(algorithm.name());
        learner.save(&path).unwrap();
        let restored = Learner::load(&path, &chain(), Device::flex()).unwrap();
        let state = [0.3, 0.1, 0.9, 0.4, 0.2, 0.8];
        assert_eq!(
            restored.act(&state).unwrap(),
            learner.act(&state).unwrap(),
            "{algorithm}"
        );
        assert_eq!((restored.updates(), restored.noise()), (3, learner.noise()));
        assert!(matches!(
            Learner::load(&path, &[vec![0, 1], vec![1, 0]], Device::flex()),
            Err(Error::Checkpoint { .. })
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A star: function 0 calls functions 1, 2 and 3.
fn star() -> Vec<Vec<u8>> {
    vec![
        vec![0, 1, 1, 1],
        vec![1, 0, 0, 0],
        vec![1, 0, 0, 0],
        vec![1, 0, 0, 0],
    ]
}

/// States of the star: one leaf, drawn at random, is flagged (feature 0) and its feature 1 is
/// the centre's best action; the other leaves' feature 1 is noise. Returns the states and the
/// flagged leaf's value.
fn flagged_state(rng: &mut Rng) -> (Vec<f32>, f32) {
    let signal = 1 + (rng.uniform() * 3.0).min(2.99) as usize;
    let mut states = vec![0.0, 0.5];
    for leaf in 1..4 {
        states.push(if leaf == signal { 1.0 } else { 0.0 });
        states.push(rng.uniform() as f32);
    }
    let value = states[2 * signal + 1];
    (states, value)
}

/// One-step episodes: the centre is rewarded for every knob near the flagged leaf's value.
fn flagged_batch(rng: &mut Rng, len: usize) -> Batch {
    let mut b = Batch::default();
    for _ in 0..len {
        let (states, value) = flagged_state(rng);
        let actions: Vec<f32> = (0..4 * 4).map(|_| rng.uniform() as f32).collect();
        let reward = -actions[..4]
            .iter()
            .map(|a| (a - value).powi(2))
            .sum::<f32>()
            / 4.0;
        b.next_states.extend(states.iter().copied());
        b.states.extend(states);
        b.actions.extend(actions);
        b.rewards.push(reward);
    }
    b
}

/// Mean distance of the centre's knobs to the flagged leaf's value, and the centre's mean
/// attention on the flagged leaf, over fresh states.
fn flagged_error(learner: &Learner, rng: &mut Rng) -> (f32, f32) {
    let (mut error, mut focus) = (0.0, 0.0);
    let trials = 200;
    for _ in 0..trials {
        let (states, value) = flagged_state(rng);
        let signal = (1..4).find(|&k| states[2 * k] == 1.0).unwrap_or(1);
        let d = learner.act(&states).unwrap();
        error += d.actions[..4]
            .iter()
            .map(|a| (a - value).abs())
            .sum::<f32>()
            / 4.0;
        focus += d.weights[signal];
    }
    (error / trials as f32, focus / trials as f32)
}

/// Which neighbour matters is in the neighbours' states: attention learns to look at the
/// flagged leaf and the centre acts on its value; a uniform mean field blurs it with the noise.
#[test]
fn attention_finds_the_informative_neighbour() {
    let train = |algorithm, scoring| {
        let mut learner = Learner::new(
            config(algorithm).with_scoring(scoring),
            &star(),
            Device::flex(),
        )
        .unwrap();
        let mut rng = Rng::new(5);
        for _ in 0..2000 {
            learner.update(&flagged_batch(&mut rng, 32)).unwrap();
        }
        flagged_error(&learner, &mut Rng::new(9))
    };
    // Observed: squared 0.133 error with 0.72 on the flagged leaf, softmax 0.118 with 0.87,
    // the uniform mean field 0.208.
    let (uniform_error, uniform_focus) = train(Algorithm::Mf, Scoring::SquaredMasked);
    assert!((uniform_focus - 1.0 / 3.0).abs() < 1e-4, "{uniform_focus}");
    for scoring in [Scoring::SquaredMasked, Scoring::MaskedSoftmax] {
        let (error, focus) = train(Algorithm::AttMf, scoring);
        eprintln!("{scoring:?}: error {error} (mf {uniform_error}), focus {focus}");
        assert!(focus > 0.6, "{scoring:?}: {focus} on the flagged leaf");
        assert!(
            error < 0.8 * uniform_error,
            "{scoring:?}: error {error}, mf {uniform_error}"
        );
    }
}

/// Serving runs without autodiff; its decisions must be the training path's, to the bit, for
/// both scorings and every algorithm (a last-bit difference changes which configuration a
/// tuning session picks).
#[test]
fn serving_decides_exactly_as_the_training_forward_pass() {
    for algorithm in Algorithm::ALL {
        for scoring in [Scoring::SquaredMasked, Scoring::MaskedSoftmax] {
            let mut learner = Learner::new(
                config(algorithm).with_scoring(scoring),
                &chain(),
                crate::default_device(),
            )
            .expect("valid");
            let mut rng = Rng::new(3);
            for _ in 0..20 {
                let b = batch(&mut rng, &learner, 32);
                learner.update(&b).expect("updates");
            }
            let states: Vec<f32> = (0..3 * 2).map(|_| rng.uniform() as f32).collect();
            let served = learner.act(&states).expect("decides");
            let s = learner
                .tensor3(&states, 1, 2, "states", &learner.device)
                .expect("shape");
            let (actions, weights) = learner.actor.forward(
                s,
                learner.batch_ids(1),
                learner.mask.clone(),
                &learner.config,
            );
            let values = |t: Tensor<3>| t.detach().into_data().try_to_vec::<f32>().expect("f32");
            assert_eq!(served.actions, values(actions), "{algorithm:?} {scoring:?}");
            assert_eq!(served.weights, values(weights), "{algorithm:?} {scoring:?}");
        }
    }
}
