//! Everything wire and transport: the gRPC handlers, protobuf ↔ domain conversion, the
//! error → `Status` mapping, bearer tokens, TLS, gRPC-Web/CORS and the dashboard's assets.

pub mod auth;
mod authorize;
pub mod browser;
mod calls;
mod connection;
pub mod convert;
pub mod dashboard;
pub mod deadline;
mod deliver;
pub mod error;
mod forward_stream;
pub mod github_intake;
mod goaway;
mod incoming;
mod job_stats;
mod jobs;
mod jobs_stream;
pub mod limits;
pub mod pb;
mod peer_link;
pub mod peers;
pub mod roles;
pub mod service;
mod stream_answers;
pub mod targets_cache;
mod targets_stream;
pub mod tls;
pub mod transport;
