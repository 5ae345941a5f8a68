//! What an operator meets on day one, through the services: the actuator announces each
//! function's effective bounds (here a topology file that allows fewer replicas and less CPU
//! than the policy's built-in `parallel`), and a tuning session plans inside them — nothing it
//! applies is refused for being outside what the platform takes.

mod common;

use faasconf_proto::v1::actuator_client::ActuatorClient;
use faasconf_proto::v1::policy_client::PolicyClient;
use faasconf_proto::v1::{self, TuningSessionState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_plans_inside_the_bounds_the_actuator_announces() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    let mut cluster = faasconf_core::catalog::builtin("parallel").unwrap();
    for f in &mut cluster.functions {
        f.bounds.replicas.max = 3;
        f.bounds.cpu_millis.max = 1200;
    }
    let actuator = common::actuator_playing(&cluster, dir.path(), &[]);
    let mut remote = ActuatorClient::connect(actuator.endpoint()).await.unwrap();
    let announced = remote
        .get_workflow(v1::GetWorkflowRequest {
            workflow: "parallel".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .workflow
        .unwrap()
        .bounds;
    assert_eq!(announced.len(), 6);
    assert!(
        announced
            .iter()
            .all(|b| b.replicas.unwrap().max == 3 && b.cpu_millis.unwrap().max == 1200),
        "{announced:?}"
    );
    let listed = remote
        .list_workflows(v1::ListWorkflowsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.workflows[0].bounds, announced);

    common::train_parallel(&store, &common::SMALL_TRAINING);
    let policy = common::parallel_policy(&store, Some(&actuator.endpoint()));
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    for screened in [false, true] {
        let started = client
            .start_tuning(v1::StartTuningRequest {
                workflow: "parallel".into(),
                actuator_endpoint: actuator.endpoint(),
                max_iterations: if screened { 2 } else { 5 },
                seed: 3,
                no_twin_screening: !screened,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let status = common::wait_for_session_end(&mut client, &started.session_id).await;
        assert_eq!(
            status.state(),
            TuningSessionState::BudgetSpent,
            "screened {screened}: {status:?}"
        );
        for i in &status.history {
            for f in &i.config.as_ref().unwrap().functions {
                assert!(
                    f.replicas <= 3 && f.cpu_millis <= 1200,
                    "screened {screened}: iteration {} proposed {f:?} outside the announced bounds",
                    i.iteration
                );
            }
        }
    }
}
