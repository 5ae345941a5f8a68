//! The `faasconf.v1.Actuator` service over a [`Backend`]: requests are converted and validated
//! here, backend errors become gRPC status codes here.

use std::pin::Pin;
use std::sync::Arc;

use faasconf_core::{FieldError, Workflow};
use faasconf_proto::convert::{
    bounds_to_proto, config_from_proto, config_to_proto, workflow_to_proto,
};
use faasconf_proto::status::invalid_argument;
use faasconf_proto::v1::{self, actuator_server::Actuator};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::backend::{ApplyError, Backend};
use crate::fanout::Subscription;
use crate::telemetry::{window_to_proto, workload_from_proto};

/// The Actuator service.
pub struct ActuatorService {
    backend: Arc<dyn Backend>,
}

impl ActuatorService {
    /// Serves `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }

    fn find(&self, name: &str) -> Result<&Workflow, Status> {
        if name.is_empty() {
            return Err(invalid_argument(&[FieldError::new("workflow", "missing")]));
        }
        self.backend.workflow(name).ok_or_else(|| {
            Status::not_found(format!(
                "workflow {} is not managed by this actuator",
                faasconf_core::limits::quoted(name)
            ))
        })
    }
}

/// The gRPC status of a backend error.
pub fn status_of(error: ApplyError) -> Status {
    match error {
        ApplyError::Invalid(errors) => invalid_argument(&errors),
        stale @ ApplyError::Stale { .. } => Status::aborted(format!(
            "expected_version: {stale}; read the workflow again and retry"
        )),
        precondition @ ApplyError::Precondition { .. } => {
            Status::failed_precondition(precondition.to_string())
        }
        ApplyError::Conflict(message) => Status::aborted(message),
        ApplyError::Unavailable(message) => Status::unavailable(message),
        ApplyError::Unsupported(message) => Status::failed_precondition(message),
        ApplyError::Exhausted(message) => Status::resource_exhausted(message),
    }
}

/// The telemetry stream of one subscriber.
pub type TelemetryStream =
    Pin<Box<dyn Stream<Item = Result<v1::TelemetryWindow, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Actuator for ActuatorService {
    type StreamTelemetryStream = TelemetryStream;

    async fn list_workflows(
        &self,
        _: Request<v1::ListWorkflowsRequest>,
    ) -> Result<Response<v1::ListWorkflowsResponse>, Status> {
        let mut workflows = Vec::new();
        for workflow in self.backend.workflows() {
            let (_, version) = self
                .backend
                .current(&workflow.name)
                .await
                .map_err(status_of)?;
            let announced = self.backend.announced(workflow);
            workflows.push(v1::WorkflowSummary {
                name: workflow.name.clone(),
                function_count: workflow.len() as u32,
                config_version: version,
                bounds: announced.functions.iter().map(bounds_to_proto).collect(),
            });
        }
        Ok(Response::new(v1::ListWorkflowsResponse { workflows }))
    }

    async fn get_workflow(
        &self,
        request: Request<v1::GetWorkflowRequest>,
    ) -> Result<Response<v1::GetWorkflowResponse>, Status> {
        let workflow = self.find(&request.get_ref().workflow)?;
        let (config, version) = self
            .backend
            .current(&workflow.name)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v1::GetWorkflowResponse {
            workflow: Some(workflow_to_proto(&self.backend.announced(workflow))),
            current_config: Some(config_to_proto(workflow, &config)),
            config_version: version,
        }))
    }

    async fn apply_config(
        &self,
        request: Request<v1::ApplyConfigRequest>,
    ) -> Result<Response<v1::ApplyConfigResponse>, Status> {
        let request = request.into_inner();
        let workflow = self.find(&request.workflow)?;
        let config = config_from_proto(workflow, request.config.as_ref(), "config")
            .map_err(|e| invalid_argument(&e))?;
        let outcome = self
            .backend
            .apply(
                &workflow.name,
                config,
                request.expected_version,
                request.dry_run,
            )
            .await
            .map_err(status_of)?;
        Ok(Response::new(v1::ApplyConfigResponse {
            applied: Some(config_to_proto(workflow, &outcome.applied)),
            config_version: outcome.version,
            diff: outcome
                .diff
                .into_iter()
                .map(|c| v1::KnobChange {
                    function: c.function,
                    knob: c.knob.name().to_owned(),
                    from: c.from,
                    to: c.to,
                })
                .collect(),
            dry_run: request.dry_run,
        }))
    }

    async fn stream_telemetry(
        &self,
        request: Request<v1::StreamTelemetryRequest>,
    ) -> Result<Response<Self::StreamTelemetryStream>, Status> {
        let workflow = self.find(&request.get_ref().workflow)?.clone();
        let Subscription { receiver, guard } = self
            .backend
            .subscribe(&workflow.name, request.get_ref().lockstep)
            .await
            .map_err(status_of)?;
        // The guard lives as long as the stream: a caller that hangs up is counted out at once.
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver).map(move |window| {
            let _open = &guard;
            Ok(window_to_proto(&workflow, &window))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn set_workload(
        &self,
        request: Request<v1::SetWorkloadRequest>,
    ) -> Result<Response<v1::SetWorkloadResponse>, Status> {
        let request = request.into_inner();
        let workflow = self.find(&request.workflow)?;
        let workload = workload_from_proto(&request).map_err(|e| invalid_argument(&e))?;
        self.backend
            .set_workload(&workflow.name, workload)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v1::SetWorkloadResponse {}))
    }
}
