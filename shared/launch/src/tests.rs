#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

use super::*;

/// A stand-in service: a shell script announcing its addresses like the services do.
fn script(body: &str) -> Result<ServiceProcess, LaunchError> {
    ServiceProcess::start(Path::new("/bin/sh"), ["-c", body], Logs::Discard)
}

const SERVE: &str = "trap 'exit 0' TERM; echo 'metrics on 127.0.0.1:9100'; \
                     echo 'listening on 127.0.0.1:50051'; while true; do sleep 0.05; done";

#[test]
fn reads_the_announced_addresses_and_stops_on_sigterm() {
    let service = script(SERVE).unwrap();
    assert_eq!(service.grpc_addr(), "127.0.0.1:50051");
    assert_eq!(service.endpoint(), "http://127.0.0.1:50051");
    assert_eq!(service.metrics_addr(), Some("127.0.0.1:9100"));
    assert!(service.rss_mb().is_some_and(|mb| mb > 0.0));
    let status = service.terminate(Duration::from_secs(5)).unwrap();
    assert!(status.success(), "the script's TERM trap exits 0: {status}");
}

#[test]
fn a_service_that_exits_before_announcing_is_an_error() {
    let error = script("echo starting; exit 3").unwrap_err();
    assert!(
        matches!(&error, LaunchError::NoAddress { reason, .. } if reason == "exited"),
        "{error}"
    );
    assert!(error.to_string().contains("/bin/sh exited before"));
}

#[test]
fn a_missing_binary_is_named() {
    let error = ServiceProcess::start(
        Path::new("/nonexistent/faasconf-policy"),
        ["x"],
        Logs::Discard,
    )
    .unwrap_err();
    assert!(matches!(error, LaunchError::Io { .. }));
    assert!(error.to_string().contains("/nonexistent/faasconf-policy"));
    let error = beside_current_exe("faasconf-no-such-binary").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("faasconf-no-such-binary not found beside")
    );
}

#[test]
fn a_service_ignoring_sigterm_is_reported_then_killed_on_drop() {
    let body = "trap '' TERM; echo 'listening on 127.0.0.1:1'; while true; do sleep 0.05; done";
    let mut service = script(body).unwrap();
    let pid = service.pid();
    let error = service
        .signal_and_wait(Duration::from_millis(300))
        .unwrap_err();
    assert!(matches!(error, LaunchError::DidNotStop { .. }), "{error}");
    drop(service);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
    assert!(status.is_err(), "the process is gone after drop");
}

#[test]
fn output_after_the_announcement_is_drained() {
    // 2 MB after the announcement: far more than a pipe holds, so the script finishes only if
    // its output is read.
    let body = "echo 'listening on 127.0.0.1:1'; i=0; while [ $i -lt 20000 ]; do \
                echo 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789; \
                i=$((i+1)); done; exit 7";
    let mut service = script(body).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = service.exited().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the script blocked on its output"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(7));
}
