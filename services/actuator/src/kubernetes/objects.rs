//! The Kubernetes API resources of the objects a function's configuration lives in; their
//! bodies and how they are read back are `faasconf-openfaas`'s.

use kube::core::{ApiResource, GroupVersionKind};

pub use faasconf_openfaas::*;

/// The API resource of the target kind.
pub fn resource(target: Target) -> ApiResource {
    match target {
        Target::Deployment => deployment_resource(),
        Target::Function => ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("openfaas.com", "v1", "Function"),
            "functions",
        ),
    }
}

/// `apps/v1` Deployments (rollouts are watched there for both targets).
pub fn deployment_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps", "v1", "Deployment"),
        "deployments",
    )
}
