//! `faasconf-policy`: trains AttMF on telemetry and answers `RecommendConfig`.
//!
//! Thin for now (issue 2): serves the `faasconf.v1.Policy` contract with health, reflection,
//! timeouts and graceful shutdown; every RPC answers UNIMPLEMENTED until the policy issue (#4)
//! brings the learner.

use std::net::SocketAddr;

use anyhow::Result;
use clap::Parser;
use faasconf_proto::v1::{self, policy_server::{Policy, PolicyServer}};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

/// The faasconf policy gRPC service.
#[derive(Debug, Parser)]
#[command(name = "faasconf-policy", version, about)]
struct Args {
    /// Address to serve gRPC on (port 0: any free port, printed at start).
    #[arg(long, env = "FAASCONF_GRPC_ADDR", default_value = "127.0.0.1:50052")]
    grpc_addr: SocketAddr,
}

/// The policy before the learner exists: every RPC says when it arrives.
struct PendingPolicy;

fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} arrives with the policy issue (#4)"))
}

#[tonic::async_trait]
impl Policy for PendingPolicy {
    async fn recommend_config(&self, _: Request<v1::RecommendConfigRequest>) -> Result<Response<v1::RecommendConfigResponse>, Status> {
        Err(not_yet("RecommendConfig"))
    }
    async fn start_tuning(&self, _: Request<v1::StartTuningRequest>) -> Result<Response<v1::TuningStatus>, Status> {
        Err(not_yet("StartTuning"))
    }
    async fn stop_tuning(&self, _: Request<v1::StopTuningRequest>) -> Result<Response<v1::TuningStatus>, Status> {
        Err(not_yet("StopTuning"))
    }
    async fn get_tuning_status(&self, _: Request<v1::GetTuningStatusRequest>) -> Result<Response<v1::TuningStatus>, Status> {
        Err(not_yet("GetTuningStatus"))
    }
    async fn start_training(&self, _: Request<v1::StartTrainingRequest>) -> Result<Response<v1::TrainingStatus>, Status> {
        Err(not_yet("StartTraining"))
    }
    async fn get_training_status(&self, _: Request<v1::GetTrainingStatusRequest>) -> Result<Response<v1::TrainingStatus>, Status> {
        Err(not_yet("GetTrainingStatus"))
    }
    async fn list_models(&self, _: Request<v1::ListModelsRequest>) -> Result<Response<v1::ListModelsResponse>, Status> {
        Err(not_yet("ListModels"))
    }
    async fn promote_model(&self, _: Request<v1::PromoteModelRequest>) -> Result<Response<v1::ModelInfo>, Status> {
        Err(not_yet("PromoteModel"))
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let _traces = faasconf_server::init_tracing("faasconf-policy");
    let args = Args::parse();
    let listener = faasconf_server::bind(args.grpc_addr).await?;
    let routes = Routes::new(PolicyServer::new(PendingPolicy));
    faasconf_server::serve::<PolicyServer<PendingPolicy>>("policy", routes, listener, faasconf_server::shutdown_signal()).await
}
