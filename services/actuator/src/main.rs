//! `faasconf-actuator`: the only component that touches the cluster (or the twin).
//!
//! Thin for now (issue 2): serves the `faasconf.v1.Actuator` contract with `ListWorkflows` and
//! `GetWorkflow` from the workflow catalog; applying configurations and streaming telemetry
//! arrive with the actuator issue and answer UNIMPLEMENTED until then. Health, reflection,
//! timeouts and graceful shutdown are in place.

mod service;

use std::net::SocketAddr;

use anyhow::Result;
use clap::Parser;
use faasconf_proto::v1::actuator_server::ActuatorServer;
use tonic::service::Routes;

use crate::service::CatalogActuator;

/// The faasconf actuator gRPC service.
#[derive(Debug, Parser)]
#[command(name = "faasconf-actuator", version, about)]
struct Args {
    /// Address to serve gRPC on (port 0: any free port, printed at start).
    #[arg(long, env = "FAASCONF_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    grpc_addr: SocketAddr,
    /// Workflows to manage: built-in names or topology files (default: every built-in one).
    #[arg(long = "workflow", env = "FAASCONF_WORKFLOWS", value_delimiter = ',')]
    workflows: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    faasconf_server::init_tracing();
    let args = Args::parse();
    // All configuration is checked before any port is bound.
    let service = CatalogActuator::load(&args.workflows)?;
    let listener = faasconf_server::bind(args.grpc_addr).await?;
    let routes = Routes::new(ActuatorServer::new(service));
    faasconf_server::serve::<ActuatorServer<CatalogActuator>>(routes, listener, faasconf_server::shutdown_signal()).await
}
