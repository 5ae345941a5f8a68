//! The gRPC contract of faasconf (`proto/faasconf/v1`, package `faasconf.v1`): generated
//! messages, clients and servers, the descriptor set for server reflection, and the
//! conversions between proto messages and the domain types of `faasconf-core` (done at the
//! service edge, nowhere else).

pub mod convert;
pub mod status;
pub mod window;

/// Generated code of package `faasconf.v1`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("faasconf.v1");
}

/// Encoded file descriptor set of every faasconf proto, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("faasconf_descriptor");
