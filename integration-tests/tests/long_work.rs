//! SIGTERM while the policy service does long work: the process exits within the 5 s the
//! README promises, and the work is left as it should be (a training job checkpoints and
//! resumes at the next start).

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use std::time::{Duration, Instant};

use common::Server;
use faasconf_proto::v1::policy_client::PolicyClient;
use faasconf_proto::v1::{self, TrainingJobState};

fn start_policy(store: &std::path::Path) -> Server {
    Server::start(
        "faasconf-policy",
        &[
            "--metrics-addr",
            "127.0.0.1:0",
            "--store",
            store.to_str().unwrap(),
            "--workflow",
            "parallel",
        ],
    )
}

/// SIGTERM in the middle of a training job: the service exits within 5 s, the job's record
/// says it was interrupted (not cancelled, not failed) and the next start resumes it from a
/// checkpoint written at the stop, not from the periodic one before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_training_exits_promptly_and_the_job_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    let policy = start_policy(&store);
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    // 200 samples, 320 epochs of them: 1000 updates, a checkpoint every 250.
    let job = client
        .start_training(v1::StartTrainingRequest {
            workflow: "parallel".into(),
            samples: 200,
            epochs: 320,
            seed: 7,
            algorithm: "mf".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let status = |client: &mut PolicyClient<tonic::transport::Channel>| {
        let mut client = client.clone();
        let id = job.job_id.clone();
        async move {
            client
                .get_training_status(v1::GetTrainingStatusRequest { job_id: id })
                .await
                .unwrap()
                .into_inner()
        }
    };
    // Past the periodic checkpoint of update 250 (sampling is the first 30% of the progress).
    let deadline = Instant::now() + Duration::from_secs(300);
    let progress_at_stop = loop {
        let s = status(&mut client).await;
        assert_eq!(s.state(), TrainingJobState::Running, "{s:?}");
        if s.progress > 0.3 + 0.7 * 260.0 / 1000.0 {
            break s.progress;
        }
        assert!(
            Instant::now() < deadline,
            "training made no progress: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(client);
    let status_at_stop = policy
        .terminate_within(Duration::from_secs(5))
        .expect("the policy exits within 5 s of SIGTERM during training");
    assert!(status_at_stop.success(), "{status_at_stop:?}");
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.path()
                .join(format!("faasconf.models/jobs/{}.json", job.job_id)),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record["state"], "running", "{record}");
    assert!(
        record["message"].as_str().unwrap().contains("interrupted"),
        "{record}"
    );

    let policy = start_policy(&store);
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    let done = loop {
        let s = status(&mut client).await;
        if !matches!(
            s.state(),
            TrainingJobState::Running | TrainingJobState::Pending
        ) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the resumed job did not finish: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done.state(), TrainingJobState::Done, "{done:?}");
    let models = faasconf_store::Store::open(&store)
        .unwrap()
        .models(Some("parallel"))
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(std::path::Path::new(&models[0].path).join("report.json"))
            .unwrap(),
    )
    .unwrap();
    // Training is the last 70% of the progress, one update at a time.
    let total = report["options"]["updates"].as_u64().unwrap()
        + report["options"]["online_steps"].as_u64().unwrap();
    let seen = ((progress_at_stop - 0.3) / 0.7 * total as f64).floor() as u64;
    let resumed_from = report["resumed_from"].as_u64().unwrap();
    assert!(
        resumed_from + 1 >= seen && resumed_from > 250,
        "resumed from {resumed_from}; {seen} of {total} updates were done before the stop"
    );
    assert!(policy.terminate().success());
}
