use super::*;

#[test]
fn the_oracle_is_interpolated_between_levels_and_clamped_outside() {
    let levels = [(10, Some(2.0)), (20, Some(4.0)), (30, None)];
    assert_eq!(oracle_at(&levels, 5), Some(2.0));
    assert_eq!(oracle_at(&levels, 15), Some(3.0));
    assert_eq!(oracle_at(&levels, 20), Some(4.0));
    assert_eq!(oracle_at(&levels, 25), None, "a level without an oracle");
    assert_eq!(oracle_at(&[], 25), None);
}

/// The same runs, window by window (decision times differ; JSON keeps a float to the last
/// digit or so).
fn assert_same(a: &Rq2, b: &Rq2) {
    assert_eq!(a.runs.len(), b.runs.len());
    for (x, y) in a.runs.iter().zip(&b.runs) {
        assert_eq!(
            (&x.method, x.seed, x.violations),
            (&y.method, y.seed, y.violations)
        );
        assert_eq!(x.windows.len(), y.windows.len());
        for (v, w) in x.windows.iter().zip(&y.windows) {
            assert_eq!(
                (v.users, v.qos_met, v.transient),
                (w.users, w.qos_met, w.transient)
            );
            assert!((v.cost - w.cost).abs() < 1e-9 && (v.e2e_mean_s - w.e2e_mean_s).abs() < 1e-9);
        }
    }
}

#[test]
fn every_method_sees_every_window_of_the_load() {
    let options = Rq2Options {
        per_minute: vec![1.0, 5.0, 2.0],
        seeds: vec![3],
        methods: vec![Method::Random, Method::Firm],
        warm_up: WarmUpOptions {
            samples: 40,
            ..WarmUpOptions::default()
        },
        oracle: SearchOptions::smallest(40),
        ..Rq2Options::full()
    };
    assert_eq!(options.windows(), 6);
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("rq2.journal.jsonl");
    let mut finished = 0;
    let run = run(&options, dir.path(), &journal, &mut |e| {
        if matches!(e, Rq2Event::Run(_)) {
            finished += 1;
        }
    })
    .expect("runs");
    assert_eq!(finished, 2);
    assert_eq!(run.oracle.len(), 5);
    for r in &run.runs {
        assert_eq!(r.windows.len(), 6, "{}", r.method);
        let met = r.windows.iter().filter(|w| w.qos_met).count();
        assert_eq!(r.violations as usize, 6 - met);
        assert!((r.compliance - met as f64 / 6.0).abs() < 1e-12);
        // The load follows the shape: its peak (minute 2) has the most users.
        let users: Vec<u32> = r.windows.iter().map(|w| w.users).collect();
        assert!(users[2..4].iter().all(|&u| u >= users[0]), "{users:?}");
        assert!(users.iter().all(|&u| (10..=30).contains(&u)), "{users:?}");
    }
    // Random re-draws every decision: rollout windows are recorded.
    assert!(run.runs[0].windows.iter().any(|w| w.transient));
    let md = markdown(&run, "test");
    assert!(md.contains("| random |") && md.contains("| firm |"), "{md}");
    // Run again on the journal: nothing is searched, warmed up or run again.
    let mut events = Vec::new();
    let again =
        super::run(&options, dir.path(), &journal, &mut |e| events.push(e)).expect("resumes");
    assert!(!events.iter().any(|e| matches!(e, Rq2Event::WarmUp(_))));
    assert_same(&again, &run);
    // A run stopped after its first method resumes with the second only.
    let text = std::fs::read_to_string(&journal).expect("reads");
    let without_firm: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"method\":\"firm\""))
        .collect();
    assert_eq!(without_firm.len(), text.lines().count() - 1);
    std::fs::write(&journal, without_firm.join("\n") + "\n").expect("writes");
    let mut events = Vec::new();
    let resumed =
        super::run(&options, dir.path(), &journal, &mut |e| events.push(e)).expect("resumes");
    assert!(events.contains(&Rq2Event::WarmUp(3)));
    assert_same(&resumed, &run);
    // Other options do not mix into this journal.
    let other = Rq2Options {
        seeds: vec![4],
        ..options.clone()
    };
    let e = super::run(&other, dir.path(), &journal, &mut |_| {}).expect_err("refused");
    assert!(e.to_string().contains("other options"), "{e}");
}

#[test]
fn violations_split_into_rollouts_load_rises_and_the_rest() {
    let window = |window, users, qos_met, transient| WindowRecord {
        window,
        users,
        cost: 1.0,
        e2e_mean_s: 0.5,
        success_ratio: 1.0,
        qos_met,
        transient,
        oracle_cost: None,
    };
    let windows = [
        window(0, 10, false, false), // other (nothing before it)
        window(1, 20, false, true),  // rollout (a rise too: the rollout comes first)
        window(2, 20, false, false), // the window after a rise
        window(3, 20, false, false), // other
        window(4, 15, true, false),
        window(5, 18, false, false), // a rise
    ];
    assert_eq!(
        ViolationSplit::of(&windows),
        ViolationSplit {
            rollout: 1,
            load_rise: 2,
            other: 2
        }
    );
}

#[test]
fn a_shape_replaces_the_minutes_a_run_plays() {
    let quick = Rq2Options::quick().with_shape(Shape::Spiky);
    assert_eq!(quick.shape, Shape::Spiky);
    assert_eq!(quick.per_minute, Shape::Spiky.per_minute()[..12].to_vec());
    assert_eq!(
        Rq2Options::full().with_shape(Shape::Steps).per_minute.len(),
        85
    );
}
