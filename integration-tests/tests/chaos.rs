//! A bounded chaos run on loopback (about a minute): concurrent `RecommendConfig` (both paths)
//! and `ApplyConfig` clients, token-less clients hammering the policy, a tuning session, and a
//! `kill -9` and restart of each service mid-way. Afterwards: every window the session
//! reported is in the store, every actuator lifetime's configuration versions are contiguous,
//! the restarted services are alive and answer, and the policy's memory stayed bounded.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use faasconf_proto::v1::TuningSessionState;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use faasconf_launch::{Logs, ServiceProcess};
use faasconf_proto::v1::actuator_client::ActuatorClient;
use faasconf_proto::v1::policy_client::PolicyClient;
use faasconf_proto::v1::{self, load::Kind};
use tokio::sync::Mutex;

const TOKEN: &str = "chaos-s3cret";

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Starts `binary` on the fixed `addr` (so clients reconnect to the same endpoint after a
/// restart), retrying while the port is still held by the killed process.
fn start_on(binary: &str, addr: &str, args: &[&str]) -> ServiceProcess {
    let all: Vec<&str> = ["--grpc-addr", addr, "--metrics-addr", "127.0.0.1:0"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    for _ in 0..50 {
        match ServiceProcess::start(&common::bin_dir().join(binary), &all, Logs::Discard) {
            Ok(p) => return p,
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    panic!("{binary} did not start on {addr}");
}

fn channel(addr: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(20))
        .connect_lazy()
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    unavailable: AtomicU64,
}

impl Tally {
    /// Counts an answer; anything but success or "the service is restarting" fails the test.
    fn count<T>(&self, what: &str, answer: Result<T, tonic::Status>) -> Option<T> {
        match answer {
            Ok(t) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                Some(t)
            }
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::Unknown
                        | tonic::Code::Cancelled
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::ResourceExhausted
                ) =>
            {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(s) => panic!("{what}: {s:?}"),
        }
    }
}

/// What the clients share: a stop flag, tallies, and the actuator's lifetime (bumped after
/// each kill) with the versions each successful apply produced in it.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    recommends: Tally,
    applies: Tally,
    lifetime: AtomicU64,
    versions: Mutex<Vec<(u64, u64)>>,
}

type Tasks = Vec<tokio::task::JoinHandle<()>>;

/// Four `RecommendConfig` clients: every eighth call of the first takes the twin path.
fn recommenders(shared: &Arc<Shared>, addr: &str, window: &v1::TelemetryWindow, tasks: &mut Tasks) {
    for k in 0..4u32 {
        let (shared, addr, window) = (shared.clone(), addr.to_owned(), window.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = PolicyClient::new(channel(&addr));
            let mut i = 0u32;
            while !shared.stop.load(Ordering::Relaxed) {
                let current = (k != 0 || !i.is_multiple_of(8)).then(|| window.clone());
                let request = v1::RecommendConfigRequest {
                    workflow: "parallel".into(),
                    load: Some(v1::Load {
                        kind: Some(Kind::ConcurrentUsers(10 + i % 20)),
                    }),
                    current,
                    ..Default::default()
                };
                let answer = c.recommend_config(common::with_token(request, TOKEN)).await;
                if shared.recommends.count("RecommendConfig", answer).is_none() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                i += 1;
            }
        }));
    }
}

/// Two `ApplyConfig` clients racing on `sequential` with optimistic concurrency.
fn appliers(shared: &Arc<Shared>, addr: &str, tasks: &mut Tasks) {
    for k in 0..2u32 {
        let (shared, addr) = (shared.clone(), addr.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut c = ActuatorClient::new(channel(&addr));
            let mut i = 0u32;
            while !shared.stop.load(Ordering::Relaxed) {
                apply_once(&shared, &mut c, 1 + (i + k) % 3).await;
                i += 1;
            }
        }));
    }
}

async fn apply_once(
    shared: &Shared,
    c: &mut ActuatorClient<tonic::transport::Channel>,
    replicas: u32,
) {
    let life = shared.lifetime.load(Ordering::Acquire);
    let read = c
        .get_workflow(v1::GetWorkflowRequest {
            workflow: "sequential".into(),
        })
        .await;
    let Some(current) = shared.applies.count("GetWorkflow", read) else {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return;
    };
    let current = current.into_inner();
    let mut config = current.current_config.unwrap();
    for f in &mut config.functions {
        f.replicas = replicas;
    }
    let answer = c
        .apply_config(v1::ApplyConfigRequest {
            workflow: "sequential".into(),
            config: Some(config),
            dry_run: false,
            expected_version: current.config_version,
        })
        .await;
    match answer {
        // Another client applied first: the optimistic check refused this one.
        Err(s) if s.code() == tonic::Code::Aborted => {}
        other => {
            if let Some(applied) = shared.applies.count("ApplyConfig", other)
                && !applied.get_ref().diff.is_empty()
                && shared.lifetime.load(Ordering::Acquire) == life
            {
                let version = applied.into_inner().config_version;
                shared.versions.lock().await.push((life, version));
            }
        }
    }
}

/// Two token-less clients calling invented methods of the policy.
fn hammers(shared: &Arc<Shared>, addr: &str, tasks: &mut Tasks) {
    for _ in 0..2 {
        let (shared, addr) = (shared.clone(), addr.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !shared.stop.load(Ordering::Relaxed) {
                let path = format!("/faasconf.v1.Policy/Invented{i}");
                let answer = common::call_path(channel(&addr), &path, None).await;
                assert!(
                    matches!(
                        answer.code(),
                        tonic::Code::Unauthenticated
                            | tonic::Code::Unavailable
                            | tonic::Code::Unknown
                    ),
                    "{answer:?}"
                );
                i += 1;
            }
        }));
    }
}

/// Each actuator lifetime's versions are contiguous and none was given twice.
fn assert_contiguous(versions: &[(u64, u64)]) {
    for life in 0..=1 {
        let seen: Vec<u64> = versions
            .iter()
            .filter(|(l, _)| *l == life)
            .map(|(_, v)| *v)
            .collect();
        let distinct: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            seen.len(),
            "lifetime {life}: a version given twice: {seen:?}"
        );
        if let (Some(first), Some(last)) = (distinct.first(), distinct.last()) {
            assert_eq!(
                last - first + 1,
                distinct.len() as u64,
                "lifetime {life}: gaps in {distinct:?}"
            );
        }
    }
    assert!(
        versions.iter().any(|(l, _)| *l == 1),
        "applies went on after the actuator's restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_survive_kills_and_hostile_clients_without_losing_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    common::train_parallel(&store, &common::SMALL_TRAINING);
    let token = dir.path().join("policy.token");
    std::fs::write(&token, TOKEN).unwrap();
    let (actuator_addr, policy_addr) = (free_port(), free_port());
    let actuator_args = [
        "--workflow",
        "parallel,sequential",
        "--clock",
        "virtual",
        "--users",
        "20",
    ];
    let actuator_url = format!("http://{actuator_addr}");
    let policy_args = [
        "--store",
        store.to_str().unwrap(),
        "--workflow",
        "parallel",
        "--auth-token-file",
        token.to_str().unwrap(),
        "--actuator",
        &actuator_url,
    ];
    let actuator = start_on("faasconf-actuator", &actuator_addr, &actuator_args);
    let policy = start_on("faasconf-policy", &policy_addr, &policy_args);
    let rss_start = policy.rss_mb().unwrap();

    // A window for the fast path (this subscriber leaves before the session starts).
    let window = common::first_window(&actuator_url, "parallel").await;
    let mut client = PolicyClient::new(channel(&policy_addr));
    let start = v1::StartTuningRequest {
        workflow: "parallel".into(),
        max_iterations: 10_000,
        no_twin_screening: true,
        seed: 5,
        ..Default::default()
    };
    let session = client
        .start_tuning(common::with_token(start, TOKEN))
        .await
        .unwrap()
        .into_inner();
    let shared = Arc::new(Shared::default());
    let mut tasks = Tasks::new();
    recommenders(&shared, &policy_addr, &window, &mut tasks);
    appliers(&shared, &actuator_addr, &mut tasks);
    hammers(&shared, &policy_addr, &mut tasks);

    // Let it run, then kill -9 the policy (after noting what the session reported) and the
    // actuator, restarting each on its port.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let asked = v1::GetTuningStatusRequest {
        session_id: session.session_id.clone(),
    };
    let reported = client
        .get_tuning_status(common::with_token(asked, TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reported.state(),
        TuningSessionState::Running,
        "{reported:?}"
    );
    policy.kill().unwrap();
    let mut policy = start_on("faasconf-policy", &policy_addr, &policy_args);
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Counted after the kill: an apply that the first actuator answered can no longer be read
    // as the second's.
    actuator.kill().unwrap();
    shared.lifetime.fetch_add(1, Ordering::AcqRel);
    let mut actuator = start_on("faasconf-actuator", &actuator_addr, &actuator_args);
    tokio::time::sleep(Duration::from_secs(10)).await;
    shared.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    // Nothing the session reported was lost with the process.
    let parallel = faasconf_core::catalog::builtin("parallel").unwrap();
    let stored = faasconf_store::Store::open(&store)
        .unwrap()
        .observations(&parallel)
        .unwrap()
        .into_iter()
        .filter(|s| s.observation.session == session.session_id)
        .count();
    assert!(
        reported.iterations > 0 && stored >= reported.iterations as usize,
        "{} iterations reported, {stored} windows stored",
        reported.iterations
    );
    assert_contiguous(&shared.versions.lock().await);
    // Both restarted services are alive and answer; the policy's memory stayed bounded.
    assert!(policy.exited().unwrap().is_none() && actuator.exited().unwrap().is_none());
    let rss_end = policy.rss_mb().unwrap();
    let (r, a) = (&shared.recommends, &shared.applies);
    eprintln!(
        "recommends ok {} / unavailable {}; applies ok {} / unavailable {}; policy RSS {rss_start:.0} MB at start, {rss_end:.0} MB at the end",
        r.ok.load(Ordering::Relaxed),
        r.unavailable.load(Ordering::Relaxed),
        a.ok.load(Ordering::Relaxed),
        a.unavailable.load(Ordering::Relaxed),
    );
    assert!(r.ok.load(Ordering::Relaxed) > 20 && a.ok.load(Ordering::Relaxed) > 20);
    assert!(rss_end < 400.0, "policy RSS {rss_end:.0} MB");
    let again = v1::RecommendConfigRequest {
        workflow: "parallel".into(),
        load: Some(v1::Load {
            kind: Some(Kind::ConcurrentUsers(20)),
        }),
        current: Some(window),
        ..Default::default()
    };
    client
        .recommend_config(common::with_token(again, TOKEN))
        .await
        .unwrap();
}
