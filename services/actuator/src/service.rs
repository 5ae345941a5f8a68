//! The Actuator service over the workflow catalog.

use std::collections::BTreeMap;
use std::pin::Pin;

use anyhow::{Context, Result};
use faasconf_core::{catalog, Workflow, WorkflowConfig};
use faasconf_proto::convert::{config_to_proto, workflow_to_proto};
use faasconf_proto::v1::{self, actuator_server::Actuator};
use tonic::{Request, Response, Status};

/// Workflows known to this actuator with their current configuration (the middle of every
/// range until a configuration is applied) and its version.
pub struct CatalogActuator {
    workflows: BTreeMap<String, (Workflow, WorkflowConfig, u64)>,
}

impl CatalogActuator {
    /// Loads the named workflows (every built-in one when `names` is empty).
    pub fn load(names: &[String]) -> Result<Self> {
        let names: Vec<String> = if names.is_empty() { catalog::BUILTIN.iter().map(|s| (*s).to_owned()).collect() } else { names.to_vec() };
        let mut workflows = BTreeMap::new();
        for name in &names {
            let w = catalog::resolve(name).with_context(|| format!("--workflow {name}"))?;
            let config = w.config_from_actions(&vec![[0.5; 4]; w.len()])?;
            workflows.insert(w.name.clone(), (w, config, 1));
        }
        Ok(Self { workflows })
    }

    fn find(&self, name: &str) -> Result<&(Workflow, WorkflowConfig, u64), Status> {
        if name.is_empty() {
            return Err(faasconf_proto::status::invalid_argument(&[faasconf_core::FieldError::new("workflow", "missing")]));
        }
        self.workflows.get(name).ok_or_else(|| Status::not_found(format!("workflow {name:?} is not managed by this actuator")))
    }
}

fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} arrives with the actuator issue (#3); this build serves ListWorkflows and GetWorkflow"))
}

#[tonic::async_trait]
impl Actuator for CatalogActuator {
    async fn list_workflows(&self, _: Request<v1::ListWorkflowsRequest>) -> Result<Response<v1::ListWorkflowsResponse>, Status> {
        let workflows = self
            .workflows
            .values()
            .map(|(w, _, version)| v1::WorkflowSummary { name: w.name.clone(), function_count: w.len() as u32, config_version: *version })
            .collect();
        Ok(Response::new(v1::ListWorkflowsResponse { workflows }))
    }

    async fn get_workflow(&self, request: Request<v1::GetWorkflowRequest>) -> Result<Response<v1::GetWorkflowResponse>, Status> {
        let (w, config, version) = self.find(&request.get_ref().workflow)?;
        Ok(Response::new(v1::GetWorkflowResponse {
            workflow: Some(workflow_to_proto(w)),
            current_config: Some(config_to_proto(w, config)),
            config_version: *version,
        }))
    }

    async fn apply_config(&self, _: Request<v1::ApplyConfigRequest>) -> Result<Response<v1::ApplyConfigResponse>, Status> {
        Err(not_yet("ApplyConfig"))
    }

    type StreamTelemetryStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::TelemetryWindow, Status>> + Send + 'static>>;

    async fn stream_telemetry(&self, _: Request<v1::StreamTelemetryRequest>) -> Result<Response<Self::StreamTelemetryStream>, Status> {
        Err(not_yet("StreamTelemetry"))
    }

    async fn set_workload(&self, _: Request<v1::SetWorkloadRequest>) -> Result<Response<v1::SetWorkloadResponse>, Status> {
        Err(not_yet("SetWorkload"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_and_describes_catalog_workflows() {
        let a = CatalogActuator::load(&[]).unwrap();
        let list = a.list_workflows(Request::new(v1::ListWorkflowsRequest {})).await.unwrap().into_inner();
        let names: Vec<_> = list.workflows.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["branch", "parallel", "sequential", "tcktapp"]);
        let got = a.get_workflow(Request::new(v1::GetWorkflowRequest { workflow: "parallel".into() })).await.unwrap().into_inner();
        assert_eq!(got.workflow.unwrap().functions.len(), 6);
        assert_eq!(got.current_config.unwrap().functions[0].replicas, 4);
        let missing = a.get_workflow(Request::new(v1::GetWorkflowRequest { workflow: "nope".into() })).await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        let empty = a.get_workflow(Request::new(v1::GetWorkflowRequest { workflow: String::new() })).await.unwrap_err();
        assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn unknown_workflow_flags_fail_before_serving() {
        assert!(CatalogActuator::load(&["nope".into()]).is_err());
    }
}
