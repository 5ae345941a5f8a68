//! The gRPC contract of faasconf (`proto/faasconf/v1`, package `faasconf.v1`): generated
//! messages, clients and servers, the descriptor set for server reflection, and the
//! conversions between proto messages and the domain types of `faasconf-core` (done at the
//! service edge, nowhere else).

pub mod convert;
pub mod states;
pub mod status;
pub mod window;

/// Generated code of package `faasconf.v1`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("faasconf.v1");
}

/// Encoded file descriptor set of every faasconf proto, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("faasconf_descriptor");

/// The path of every faasconf RPC (`/faasconf.v1.Actuator/ApplyConfig`, ...), read from the
/// descriptor set: the fixed set of methods a label or a log line may name.
pub fn rpc_paths() -> &'static std::collections::HashSet<String> {
    use prost::Message;
    static PATHS: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        // The set is compiled in; a descriptor that does not decode is a build defect, and no
        // path is then known (every call is labelled `unknown`), which is safe.
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap_or_default();
        set.file
            .iter()
            .flat_map(|file| {
                let package = file.package().to_owned();
                file.service.iter().flat_map(move |service| {
                    let prefix = format!("/{package}.{}/", service.name());
                    service
                        .method
                        .iter()
                        .map(move |m| format!("{prefix}{}", m.name()))
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rpc_of_the_contract_is_known_and_nothing_else() {
        let paths = super::rpc_paths();
        for known in [
            "/faasconf.v1.Actuator/ApplyConfig",
            "/faasconf.v1.Actuator/StreamTelemetry",
            "/faasconf.v1.Policy/RecommendConfig",
            "/faasconf.v1.Policy/CancelTraining",
        ] {
            assert!(paths.contains(known), "{known} in {paths:?}");
        }
        assert!(!paths.contains("/faasconf.v1.Policy/Nope"));
    }
}

#[cfg(test)]
mod fuzz;
