//! What the cluster runs is read, not remembered: a change made outside the actuator (`kubectl
//! edit`, `faas-cli deploy`) is seen and numbered.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_change_made_outside_the_actuator_is_a_new_version() {
    let w = builtin("parallel").unwrap();
    let (backend, cluster) = start(
        Cluster::with(&w, &uniform(1000), Target::Deployment),
        Target::Deployment,
        Platform::Ce,
    );
    assert_eq!(backend.current("parallel").await.unwrap().1, 1);
    // `kubectl edit`: resnet's CPU, our version annotation left as it was.
    {
        let mut c = cluster.lock().unwrap();
        let resources = &mut c.deployments.get_mut("resnet").unwrap()["spec"]["template"]["spec"]["containers"]
            [0]["resources"];
        resources["limits"]["cpu"] = json!("1500m");
        resources["requests"]["cpu"] = json!("1500m");
    }
    let (config, version) = backend.current("parallel").await.unwrap();
    let resnet = w.function_index("resnet").unwrap();
    assert_eq!(config.0[resnet].cpu_millis, 1500);
    assert_eq!(version, 2, "a foreign change is a new version");
    assert_eq!(
        backend.current("parallel").await.unwrap().1,
        2,
        "read again: unchanged"
    );
    // A caller that read version 1 is told it is stale; one at version 2 applies as version 3.
    let Err(ApplyError::Stale {
        current: 2,
        expected: 1,
    }) = backend.apply("parallel", uniform(1200), 1, false).await
    else {
        panic!("an apply over a foreign change went through")
    };
    assert_eq!(
        backend
            .apply("parallel", uniform(1200), 2, false)
            .await
            .unwrap()
            .version,
        3
    );
}
