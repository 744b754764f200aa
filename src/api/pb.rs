//! Generated protobuf and gRPC types of `batchscaler.v1`, plus conversions to our own types.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("batchscaler.v1");

/// Encoded file descriptor set of the contract, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/batchscaler_descriptor.bin"));
