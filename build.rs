//! Compiles the gRPC contract with protox (no system protoc needed) and keeps the encoded
//! file descriptor set, with the proto's comments (source info), in `OUT_DIR` for server
//! reflection, so `grpcurl describe` shows them.
use prost::Message;
use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/batchscaler/v1/batchscaler.proto";
    println!("cargo:rerun-if-changed={proto}");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files([proto])?;
    let fds = compiler.file_descriptor_set();
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);
    fs::write(out.join("batchscaler_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
