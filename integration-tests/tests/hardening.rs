//! The policy as a hostile or careless client meets it, through the real binary on loopback:
//! no request crashes it or makes it crash-loop, its actuator credential goes to no endpoint a
//! caller names, token-less callers cannot grow `/metrics`, heavy requests are bounded and
//! stop when their caller gives up, and error answers stay small. (The actuator's side is in
//! `hardening_actuator.rs`.)

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use faasconf_proto::v1::TrainingJobState;
use std::time::Duration;

use common::{Server, refuses_to_start, violated_fields};
use faasconf_proto::v1::policy_client::PolicyClient;
use faasconf_proto::v1::{self, load::Kind};

fn s(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

fn users(n: u32) -> Option<v1::Load> {
    Some(v1::Load {
        kind: Some(Kind::ConcurrentUsers(n)),
    })
}

fn training(samples: u32, epochs: u32) -> v1::StartTrainingRequest {
    v1::StartTrainingRequest {
        workflow: "parallel".into(),
        samples,
        epochs,
        seed: 3,
        ..Default::default()
    }
}

async fn status(
    client: &mut PolicyClient<tonic::transport::Channel>,
    id: &str,
) -> v1::TrainingStatus {
    client
        .get_training_status(v1::GetTrainingStatusRequest { job_id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

/// Defect 1: `samples = 4294967295` aborted the process, and the job, persisted as running,
/// aborted every restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_requests_are_bounded_cancellable_and_never_crash_loop() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    let jobs = dir.path().join("faasconf.models").join("jobs");
    let args = [
        "--metrics-addr",
        "127.0.0.1:0",
        "--store",
        s(&store),
        "--workflow",
        "parallel",
        "--max-training-jobs",
        "1",
    ];
    let mut policy = Server::start("faasconf-policy", &args);
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();

    for (request, field, limit) in [
        (training(u32::MAX, 0), "samples", "50000"),
        (training(0, u32::MAX), "epochs", "1000"),
        // Within each limit, past the total: 50000 samples x 1000 epochs.
        (training(50_000, 1000), "epochs", "100000"),
    ] {
        let refused = client.start_training(request).await.unwrap_err();
        assert_eq!(violated_fields(&refused), [field], "{refused:?}");
        assert!(refused.message().contains(limit), "{}", refused.message());
    }
    let bad_algorithm = client
        .start_training(v1::StartTrainingRequest {
            algorithm: "nope".into(),
            ..training(10, 0)
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_algorithm), ["algorithm"]);
    assert!(policy.alive(), "the policy survived every request");
    assert!(
        !jobs.exists() || std::fs::read_dir(&jobs).unwrap().next().is_none(),
        "nothing refused was written"
    );

    // One job at a time here: the next is RESOURCE_EXHAUSTED; a job can be cancelled.
    let first = client
        .start_training(training(20_000, 0))
        .await
        .unwrap()
        .into_inner();
    let second = client.start_training(training(200, 0)).await.unwrap_err();
    assert_eq!(second.code(), tonic::Code::ResourceExhausted, "{second:?}");
    assert!(
        second.message().contains("--max-training-jobs"),
        "{}",
        second.message()
    );
    let cancelled = client
        .cancel_training(v1::CancelTrainingRequest {
            job_id: first.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        cancelled.state(),
        TrainingJobState::Cancelled,
        "{cancelled:?}"
    );
    assert_eq!(
        status(&mut client, &first.job_id).await.state(),
        TrainingJobState::Cancelled
    );
    let missing = client
        .cancel_training(v1::CancelTrainingRequest {
            job_id: "x".repeat(1 << 20),
        })
        .await
        .unwrap_err();
    common::assert_small(&missing, tonic::Code::NotFound);

    // A poisoned record, as the old version persisted it (running, past the limits), and a
    // record of a job that took the process down three times: neither runs again.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(jobs.join(format!("{}.json", first.job_id))).unwrap(),
    )
    .unwrap();
    assert_eq!(record["state"], "cancelled");
    let mut poison = record.clone();
    poison["id"] = "train-poison".into();
    poison["state"] = "running".into();
    poison["spec"]["samples"] = u64::from(u32::MAX).into();
    poison.as_object_mut().unwrap().remove("starts");
    let mut looping = record;
    looping["id"] = "train-looping".into();
    looping["state"] = "running".into();
    looping["starts"] = 3.into();
    for job in [&poison, &looping] {
        let path = jobs.join(format!("{}.json", job["id"].as_str().unwrap()));
        std::fs::write(path, serde_json::to_vec(job).unwrap()).unwrap();
    }
    policy.terminate();
    let mut policy = Server::start("faasconf-policy", &args);
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    let poisoned = status(&mut client, "train-poison").await;
    assert_eq!(poisoned.state(), TrainingJobState::Failed, "{poisoned:?}");
    assert!(
        poisoned.message.contains("not resumed") && poisoned.message.contains("samples"),
        "{}",
        poisoned.message
    );
    let looped = status(&mut client, "train-looping").await;
    assert_eq!(looped.state(), TrainingJobState::Failed, "{looped:?}");
    assert!(
        looped.message.contains("started 3 times"),
        "{}",
        looped.message
    );
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(jobs.join("train-poison.json")).unwrap()).unwrap();
    assert_eq!(
        on_disk["state"], "failed",
        "recorded, so no later start tries it"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(policy.alive());
}

/// Defect 2: `actuator_endpoint` was free, and the actuator token went to it in plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actuator_credential_goes_only_where_the_operator_said() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    let token = dir.path().join("actuator.token");
    std::fs::write(&token, "actuator-s3cret").unwrap();
    // A listener standing for an attacker's endpoint: it must never see a connection.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_url = format!("http://{}", trap.local_addr().unwrap());
    let base = [
        "--store",
        s(&store),
        "--workflow",
        "parallel",
        "--actuator-token-file",
        s(&token),
    ];

    // The token would travel in plaintext: refused at start, naming the flag that allows it.
    let plaintext: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--actuator", "http://127.0.0.1:1"])
        .collect();
    let refused = refuses_to_start("faasconf-policy", &plaintext);
    assert!(
        refused.contains("--allow-plaintext-token") && !refused.contains("s3cret"),
        "{refused}"
    );
    // TLS configured, plaintext endpoint: refused too (the token went over http:// before).
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not checked before a connection").unwrap();
    let tls: Vec<&str> = plaintext
        .iter()
        .copied()
        .chain(["--actuator-tls-ca", s(&ca)])
        .collect();
    let refused = refuses_to_start("faasconf-policy", &tls);
    assert!(refused.contains("https://"), "{refused}");
    let malformed: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--allowed-actuator", "127.0.0.1:50051"])
        .collect();
    assert!(refuses_to_start("faasconf-policy", &malformed).contains("--allowed-actuator"));

    let args: Vec<&str> = base
        .iter()
        .copied()
        .chain([
            "--allow-plaintext-token",
            "--actuator",
            "http://127.0.0.1:1",
        ])
        .collect();
    let args: Vec<&str> = args
        .into_iter()
        .chain(["--metrics-addr", "127.0.0.1:0"])
        .collect();
    let policy = Server::start("faasconf-policy", &args);
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    for endpoint in [
        trap_url.as_str(),
        "not a url",
        "http://",
        "http://127.0.0.1:1@evil",
    ] {
        let refused = client
            .start_tuning(v1::StartTuningRequest {
                workflow: "parallel".into(),
                actuator_endpoint: endpoint.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            violated_fields(&refused),
            ["actuator_endpoint"],
            "{endpoint}: {refused:?}"
        );
    }
    // A load model the contract does not know is refused by name, before anything starts.
    let refused = client
        .start_tuning(v1::StartTuningRequest {
            workflow: "parallel".into(),
            actuator_endpoint: "http://127.0.0.1:1".into(),
            load_model: 17,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["load_model"], "{refused:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        trap.accept().is_err(),
        "the policy connected to an endpoint a caller named"
    );
}

/// Defect 3: every `/faasconf.*/<anything>` path became a label, before the auth check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_unauthenticated_calls_add_no_series() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("policy.token");
    std::fs::write(&token, "policy-s3cret").unwrap();
    let store = dir.path().join("faasconf.db");
    let policy = Server::start(
        "faasconf-policy",
        &[
            "--metrics-addr",
            "127.0.0.1:0",
            "--store",
            s(&store),
            "--workflow",
            "parallel",
            "--auth-token-file",
            s(&token),
        ],
    );
    let channel = tonic::transport::Channel::from_shared(policy.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let before = policy.scrape().len();
    let rss_before = policy.rss_mb();
    const TOKENLESS: usize = 3000;
    const INVENTED: usize = 500;
    let calls = (0..TOKENLESS)
        .map(|i| (format!("/faasconf.v1.Policy/Invented{i}"), None))
        .chain(
            (0..INVENTED).map(|i| (format!("/faasconf.x{i}.Policy/Nope"), Some("policy-s3cret"))),
        );
    for (path, token) in calls {
        let answer = common::call_path(channel.clone(), &path, token).await;
        let expected = if token.is_some() {
            tonic::Code::Unimplemented
        } else {
            tonic::Code::Unauthenticated
        };
        assert_eq!(answer.code(), expected, "{path}");
    }
    let text = policy.scrape();
    common::promtool_check(&text);
    assert!(
        !text.contains("Invented") && !text.contains("faasconf.x"),
        "a caller chose a label"
    );
    assert!(
        text.contains(&format!(
            "method=\"unknown\",code=\"Unauthenticated\"}} {TOKENLESS}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "method=\"unknown\",code=\"Unimplemented\"}} {INVENTED}"
        )),
        "{text}"
    );
    assert!(
        text.len() < before + 4096,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
    eprintln!(
        "RSS {rss_before:.1} MB before, {:.1} MB after {} calls",
        policy.rss_mb(),
        TOKENLESS + INVENTED
    );
}

/// Defects 4 and 5 on the policy: bounded users, twin-path work that stops when its caller
/// gives up, a limit on twin-path calls at once, and small answers to huge names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_recommendations_are_bounded_and_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    common::train_parallel(&store, &common::SMALL_TRAINING);
    let policy = Server::start(
        "faasconf-policy",
        &[
            "--metrics-addr",
            "127.0.0.1:0",
            "--store",
            s(&store),
            "--workflow",
            "parallel",
            "--max-twin-recommends",
            "1",
        ],
    );
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    let ask = |users_: u32| v1::RecommendConfigRequest {
        workflow: "parallel".into(),
        load: users(users_),
        ..Default::default()
    };
    for n in [0, 1001, 100_001] {
        let refused = client.recommend_config(ask(n)).await.unwrap_err();
        assert_eq!(
            violated_fields(&refused),
            ["load.concurrent_users"],
            "{n} users: {refused:?}"
        );
        assert!(
            refused.message().contains("1..=1000"),
            "{}",
            refused.message()
        );
    }
    let huge = client
        .recommend_config(v1::RecommendConfigRequest {
            workflow: "w".repeat(1 << 20),
            ..ask(20)
        })
        .await
        .unwrap_err();
    common::assert_small(&huge, tonic::Code::NotFound);

    // A caller that gives up (its deadline) leaves no work running.
    let mut slow = tonic::Request::new(ask(1000));
    slow.set_timeout(Duration::from_secs(2));
    let gave_up = client.recommend_config(slow).await.unwrap_err();
    // The client's own timer ends the call (CANCELLED "Timeout expired"), or the server's
    // deadline (DEADLINE_EXCEEDED), whichever fires first.
    assert!(
        matches!(
            gave_up.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{gave_up:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = policy.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let spent = policy.cpu_seconds() - cpu;
    assert!(
        spent < 0.5,
        "{spent:.2} s of CPU in the 3 s after the caller gave up"
    );

    // One twin-path call at a time here: a second one is RESOURCE_EXHAUSTED, the fast path not.
    let mut busy = client.clone();
    let running = tokio::spawn(async move { busy.recommend_config(ask(1000)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = client.recommend_config(ask(20)).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("--max-twin-recommends"),
        "{}",
        refused.message()
    );
    running.abort();
    // The abandoned call winds down and gives its permit back.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut quick = tonic::Request::new(ask(10));
        quick.set_timeout(Duration::from_millis(300));
        match client.recommend_config(quick).await {
            Err(e)
                if e.code() == tonic::Code::ResourceExhausted
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                assert!(
                    matches!(
                        e.code(),
                        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
                    ),
                    "the permit came back: {e:?}"
                );
                break;
            }
            Ok(_) => break,
        }
    }
}
