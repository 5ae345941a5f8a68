//! TLS, mutual TLS and bearer tokens on the services as processes: a TLS server refuses
//! plaintext clients and (with a client CA) clients without a certificate, and answers probes
//! in plaintext on its health port; with a token file every RPC but health needs the token,
//! else UNAUTHENTICATED; the policy reaches a secured
//! actuator with its client flags, and `faasconf recommend` a secured policy service.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use faasconf_proto::v1::TuningSessionState;
use std::path::{Path, PathBuf};

use common::{Server, with_token};
use faasconf_proto::v1;
use faasconf_proto::v1::actuator_client::ActuatorClient;
use faasconf_proto::v1::policy_client::PolicyClient;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A CA, a server certificate for `localhost` and a client certificate, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["faasconf-policy".into()]);
    Pki {
        ca: write("ca.pem", ca.pem()),
        server_cert: write("server.pem", server_cert),
        server_key: write("server.key", server_key),
        client_cert: write("client.pem", client_cert),
        client_key: write("client.key", client_key),
    }
}

fn port(server: &Server) -> &str {
    server.addr().rsplit(':').next().unwrap()
}

async fn tls_channel(
    server: &Server,
    pki: &Pki,
    identity: bool,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca).unwrap()));
    if identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(&pki.client_cert).unwrap(),
            std::fs::read(&pki.client_key).unwrap(),
        ));
    }
    Endpoint::from_shared(format!("https://localhost:{}", port(server)))?
        .tls_config(tls)?
        .connect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_services_refuse_plaintext_missing_certificates_and_missing_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let health_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let health_addr = format!("127.0.0.1:{health_port}");
    let token_file = dir.path().join("actuator.token");
    std::fs::write(&token_file, "actuator-s3cret\n").unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let secured = [
        "--tls-cert".to_owned(),
        s(&pki.server_cert),
        "--tls-key".to_owned(),
        s(&pki.server_key),
        "--tls-client-ca".to_owned(),
        s(&pki.ca),
        "--auth-token-file".to_owned(),
        s(&token_file),
        "--health-addr".to_owned(),
        health_addr.clone(),
    ];
    let args: Vec<&str> = common::VIRTUAL_PARALLEL_ACTUATOR
        .into_iter()
        .chain(secured.iter().map(String::as_str))
        .collect();
    let actuator = Server::start("faasconf-actuator", &args);
    // Probes: health alone, in plaintext, on --health-addr.
    let probe = async {
        for _ in 0..50 {
            if let Ok(c) = Endpoint::from_shared(format!("http://{health_addr}"))
                .unwrap()
                .connect()
                .await
            {
                return c;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("nothing on --health-addr {health_addr}");
    }
    .await;
    let probed = HealthClient::new(probe.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(probed.status, 1, "SERVING in plaintext on the health port");
    let only_health = ActuatorClient::new(probe)
        .list_workflows(v1::ListWorkflowsRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        only_health.code(),
        tonic::Code::Unimplemented,
        "the health port serves health only"
    );

    // Plaintext: refused (at connecting or at the first call).
    let plaintext = async {
        let channel = Endpoint::from_shared(format!("http://127.0.0.1:{}", port(&actuator)))?
            .connect()
            .await?;
        ActuatorClient::new(channel)
            .list_workflows(v1::ListWorkflowsRequest {})
            .await
            .map_err(|s| anyhow::anyhow!("{s}"))?;
        anyhow::Ok(())
    };
    assert!(plaintext.await.is_err(), "a plaintext client was served");
    // TLS without a client certificate: refused by mutual TLS.
    let anonymous = async {
        let channel = tls_channel(&actuator, &pki, false).await?;
        ActuatorClient::new(channel)
            .list_workflows(v1::ListWorkflowsRequest {})
            .await
            .map_err(|s| anyhow::anyhow!("{s}"))?;
        anyhow::Ok(())
    };
    assert!(
        anonymous.await.is_err(),
        "a client without a certificate was served"
    );
    // With a certificate: health needs no token, everything else does.
    let channel = tls_channel(&actuator, &pki, true).await.unwrap();
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "faasconf.v1.Actuator".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, 1, "SERVING");
    let mut client = ActuatorClient::new(channel);
    let refused = client
        .list_workflows(v1::ListWorkflowsRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let wrong = client
        .list_workflows(with_token(v1::ListWorkflowsRequest {}, "guess"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    let listed = client
        .list_workflows(with_token(v1::ListWorkflowsRequest {}, "actuator-s3cret"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.workflows.len(), 1);

    // The policy reaches the secured actuator with its client flags; a policy without the
    // actuator's token is refused there. The policy itself requires its own token.
    let store = dir.path().join("faasconf.db");
    common::train_parallel(&store, &common::SMALL_TRAINING);
    let policy_token = dir.path().join("policy.token");
    std::fs::write(&policy_token, "policy-s3cret").unwrap();
    let actuator_url = format!("https://localhost:{}", port(&actuator));
    let policy_args = |with_actuator_token: bool| {
        let mut args = vec![
            "--metrics-addr".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--store".to_owned(),
            s(&store),
            "--workflow".to_owned(),
            "parallel".to_owned(),
            "--auth-token-file".to_owned(),
            s(&policy_token),
            "--tls-cert".to_owned(),
            s(&pki.server_cert),
            "--tls-key".to_owned(),
            s(&pki.server_key),
            "--actuator-tls-ca".to_owned(),
            s(&pki.ca),
            "--actuator-tls-client-cert".to_owned(),
            s(&pki.client_cert),
            "--actuator-tls-client-key".to_owned(),
            s(&pki.client_key),
            "--allowed-actuator".to_owned(),
            actuator_url.clone(),
        ];
        if with_actuator_token {
            args.extend(["--actuator-token-file".to_owned(), s(&token_file)]);
        }
        args
    };
    for with_actuator_token in [true, false] {
        let args = policy_args(with_actuator_token);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let policy = Server::start("faasconf-policy", &args);
        let mut client = PolicyClient::new(tls_channel(&policy, &pki, false).await.unwrap());
        let start = v1::StartTuningRequest {
            workflow: "parallel".into(),
            actuator_endpoint: actuator_url.clone(),
            max_iterations: 1,
            no_twin_screening: true,
            seed: 1,
            ..Default::default()
        };
        let refused = client.start_tuning(start.clone()).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        let session = client
            .start_tuning(with_token(start, "policy-s3cret"))
            .await
            .unwrap()
            .into_inner();
        let status = common::wait_for_session_end_with_token(
            &mut client,
            &session.session_id,
            Some("policy-s3cret"),
        )
        .await;
        if with_actuator_token {
            assert_eq!(
                status.state(),
                TuningSessionState::BudgetSpent,
                "{status:?}"
            );
            assert_eq!(status.iterations, 1);
        } else {
            assert_eq!(status.state(), TuningSessionState::Failed, "{status:?}");
            assert!(
                status.message.contains("Unauthenticated"),
                "{}",
                status.message
            );
        }

        // faasconf recommend against the secured policy: with the CA and the token it gets a
        // configuration; without the token it fails saying why.
        let recommend = |token: bool| {
            let mut c = common::command("faasconf");
            c.args([
                "recommend",
                "--endpoint",
                &format!("https://localhost:{}", port(&policy)),
                "--workflow",
                "parallel",
                "--users",
                "20",
                "--tls-ca",
                &s(&pki.ca),
            ]);
            if token {
                c.args(["--token-file", &s(&policy_token)]);
            }
            c.output().unwrap()
        };
        let ok = recommend(true);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
        assert_eq!(json["config"].as_object().unwrap().len(), 6);
        let refused = recommend(false);
        assert!(!refused.status.success());
        let message = String::from_utf8_lossy(&refused.stderr);
        assert!(message.contains("Unauthenticated"), "{message}");
        assert!(
            !message.contains("policy-s3cret"),
            "the token is never printed"
        );
    }
}
