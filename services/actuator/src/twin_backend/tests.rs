use faasconf_core::catalog::builtin;
use faasconf_core::{FunctionConfig, WorkflowConfig};

use super::*;
use crate::fanout::SUBSCRIBER_QUEUE;

fn settings(clock: Clock, window_seconds: f64) -> TwinSettings {
    TwinSettings {
        clock,
        window_seconds,
        workload: Workload::ClosedLoop { users: 10 },
        seed: 1,
    }
}

fn backend(clock: Clock, window_seconds: f64) -> (TwinBackend, watch::Sender<bool>) {
    let (stop, stopped) = watch::channel(false);
    let b = TwinBackend::start(
        vec![builtin("parallel").unwrap()],
        &settings(clock, window_seconds),
        stopped,
    )
    .unwrap();
    (b, stop)
}

fn uniform(n: usize, cpu_millis: u32) -> WorkflowConfig {
    WorkflowConfig(vec![
        FunctionConfig {
            cpu_millis,
            memory_mib: 1024,
            replicas: 2,
            concurrency: 4
        };
        n
    ])
}

#[tokio::test]
async fn apply_validates_whole_configurations_and_changes_nothing_on_error() {
    let (b, _stop) = backend(Clock::Virtual, 30.0);
    let m = b.get("parallel").unwrap();
    let (before, v1) = m.current().await;
    let mut bad = uniform(6, 1000);
    bad.0[2].cpu_millis = 9999;
    bad.0[5].replicas = 0;
    let Err(ApplyError::Invalid(errors)) = m.apply(bad, 0, false).await else {
        panic!("accepted an invalid configuration")
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["config.resize.cpu_millis", "config.mobilenet.replicas"]
    );
    assert_eq!(m.current().await, (before, v1), "nothing applied");
}

#[tokio::test]
async fn dry_run_idempotence_and_stale_versions() {
    let (b, _stop) = backend(Clock::Virtual, 30.0);
    let m = b.get("parallel").unwrap();
    let (_, v1) = m.current().await;
    let next = uniform(6, 1500);
    let dry = m.apply(next.clone(), v1, true).await.unwrap();
    assert_eq!(dry.version, v1);
    // From the middle of every range (1125 m, 1152 MiB, 4 replicas, 5 slots) every knob moves.
    assert_eq!(dry.diff.len(), 6 * 4);
    assert_eq!(m.current().await.1, v1, "a dry run changes nothing");
    let applied = m.apply(next.clone(), v1, false).await.unwrap();
    assert_eq!(applied.version, v1 + 1);
    let again = m.apply(next.clone(), 0, false).await.unwrap();
    assert_eq!((again.version, again.diff.len()), (v1 + 1, 0), "idempotent");
    let Err(ApplyError::Stale { current, expected }) = m.apply(uniform(6, 800), v1, false).await
    else {
        panic!("stale version accepted")
    };
    assert_eq!((current, expected), (v1 + 1, v1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_on_one_version_have_exactly_one_winner() {
    let (b, _stop) = backend(Clock::Virtual, 30.0);
    let m = b.get("parallel").unwrap().clone();
    for round in 0..5u32 {
        let (_, version) = m.current().await;
        let attempts: Vec<_> = (0..8u32)
            .map(|i| {
                let m = m.clone();
                tokio::spawn(async move {
                    m.apply(uniform(6, 600 + 100 * i + round), version, false)
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, a) in attempts.into_iter().enumerate() {
            match a.await.unwrap() {
                Ok(outcome) => winners.push((i, outcome)),
                Err(ApplyError::Stale { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        let (i, outcome) = &winners[0];
        assert_eq!(outcome.version, version + 1);
        assert_eq!(
            m.current().await.0,
            uniform(6, 600 + 100 * *i as u32 + round),
            "the winner's configuration is in force: no lost update"
        );
    }
}

#[tokio::test]
async fn virtual_clock_streams_tagged_windows_paced_by_the_reader() {
    let (b, stop) = backend(Clock::Virtual, 30.0);
    let m = b.get("parallel").unwrap();
    let mut rx = m.subscribe(false).await.unwrap();
    let first = rx.recv().await.unwrap();
    let (_, v1) = m.current().await;
    assert_eq!(first.config_version, v1);
    m.apply(uniform(6, 1800), 0, false).await.unwrap();
    // Windows queued before the change still say version 1; the first after it is transient.
    let mut seen = vec![first];
    while seen.last().unwrap().config_version == v1 {
        seen.push(rx.recv().await.unwrap());
    }
    let changed = seen.last().unwrap();
    assert!(changed.transient);
    assert_eq!(changed.config, uniform(6, 1800));
    let indices: Vec<u64> = seen.iter().map(|w| w.index).collect();
    assert!(
        indices.windows(2).all(|p| p[1] == p[0] + 1),
        "no window skipped: {indices:?}"
    );
    assert!(
        seen.len() <= 2 + SUBSCRIBER_QUEUE,
        "the twin waits for its reader"
    );
    stop.send(true).unwrap();
    while rx.recv().await.is_some() {}
}

#[tokio::test]
async fn a_vanished_subscriber_does_not_block_the_others() {
    let (b, _stop) = backend(Clock::Virtual, 30.0);
    let m = b.get("parallel").unwrap();
    let gone = m.subscribe(false).await.unwrap();
    let mut alive = m.subscribe(false).await.unwrap();
    drop(gone);
    for expected in 0..10 {
        let w = tokio::time::timeout(std::time::Duration::from_secs(10), alive.recv())
            .await
            .expect("not blocked")
            .unwrap();
        assert_eq!(w.index, expected);
    }
    assert_eq!(m.subscriber_count().await, 1);
}

#[tokio::test(start_paused = true)]
async fn real_clock_keeps_time_and_slow_subscribers_miss_windows() {
    let (b, stop) = backend(Clock::Real, 30.0);
    let m = b.get("parallel").unwrap().clone();
    let mut slow = m.subscribe(false).await.unwrap();
    let mut fast = m.subscribe(false).await.unwrap();
    let mut fast_seen = Vec::new();
    for _ in 0..(SUBSCRIBER_QUEUE + 4) {
        fast_seen.push(fast.recv().await.unwrap().index);
    }
    // The fast reader saw every window, one per 30 s of (paused) wall time.
    assert_eq!(
        fast_seen,
        (0..(SUBSCRIBER_QUEUE as u64 + 4)).collect::<Vec<_>>()
    );
    // The slow one holds only what fitted in its queue; the rest passed it by.
    let mut slow_seen = Vec::new();
    while let Ok(w) = slow.receiver.try_recv() {
        slow_seen.push(w.index);
    }
    assert_eq!(slow_seen, (0..SUBSCRIBER_QUEUE as u64).collect::<Vec<_>>());
    stop.send(true).unwrap();
    assert!(fast.recv().await.is_none(), "streams end at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockstep_subscriber_holds_the_virtual_clock_until_it_decides() {
    let (b, _stop) = backend(Clock::Virtual, 30.0);
    let m = b.get("parallel").unwrap().clone();
    let mut rx = m.subscribe(true).await.unwrap();
    let quiet = std::time::Duration::from_millis(300);
    let first = rx.recv().await.unwrap();
    assert!(!first.transient);
    // No decision yet: nothing more is simulated (a free-running clock would have filled the
    // queue by now).
    assert!(
        tokio::time::timeout(quiet, rx.recv()).await.is_err(),
        "the clock waited"
    );
    // Keeping the configuration is a decision too.
    let (config, version) = m.current().await;
    m.apply(config, version, false).await.unwrap();
    let second = rx.recv().await.unwrap();
    assert_eq!(
        (second.index, second.config_version),
        (first.index + 1, version)
    );
    // A change: its transient window does not wait, the steady one after it does.
    m.apply(uniform(6, 1500), version, false).await.unwrap();
    let transient = rx.recv().await.unwrap();
    assert!(transient.transient);
    let mut steady = rx.recv().await.unwrap();
    while steady.transient {
        steady = rx.recv().await.unwrap();
    }
    assert!(
        tokio::time::timeout(quiet, rx.recv()).await.is_err(),
        "held after the steady window"
    );
    // Dry runs decide nothing.
    m.apply(uniform(6, 800), 0, true).await.unwrap();
    assert!(
        tokio::time::timeout(quiet, rx.recv()).await.is_err(),
        "a dry run released the clock"
    );
    // A lockstep subscriber that goes away releases the clock for the others.
    let mut other = m.subscribe(false).await.unwrap();
    drop(rx);
    for _ in 0..3 {
        tokio::time::timeout(std::time::Duration::from_secs(10), other.recv())
            .await
            .expect("released")
            .unwrap();
    }
}

/// A window long enough to take a while to simulate (about a second on 2 cores).
fn heavy_backend() -> (TwinBackend, watch::Sender<bool>) {
    let (stop, stopped) = watch::channel(false);
    let settings = TwinSettings {
        workload: Workload::ClosedLoop { users: 1000 },
        ..settings(Clock::Virtual, 600.0)
    };
    let b = TwinBackend::start(vec![builtin("parallel").unwrap()], &settings, stopped).unwrap();
    (b, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_in_simulation_blocks_neither_reads_nor_applies() {
    let (b, _stop) = heavy_backend();
    let m = b.get("parallel").unwrap().clone();
    let mut rx = m.subscribe(false).await.unwrap();
    // The clock starts on the first window as soon as someone listens.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (_, v1) = m.current().await;
    let outcome = m.apply(uniform(6, 1500), v1, false).await.unwrap();
    assert_eq!(outcome.version, v1 + 1);
    assert_eq!(
        m.current().await.1,
        v1 + 1,
        "the apply is what callers read at once"
    );
    // Both answered while the first window was still being simulated...
    assert!(
        rx.receiver.try_recv().is_err(),
        "the reads and the apply waited for the window"
    );
    // ...which ends under the configuration it started with; the next one starts with the
    // change, its version and a rollout.
    let first = rx.recv().await.unwrap();
    assert_eq!(first.config_version, v1);
    let second = rx.recv().await.unwrap();
    assert_eq!(second.config_version, v1 + 1);
    assert_eq!(second.config, uniform(6, 1500));
    assert!(
        second.transient,
        "the rollout shows in the window it started in"
    );
}
