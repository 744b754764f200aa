//! Pure types and rules: HRAs and their reservations, validated scale events, batch reports
//! and the planner. No IO, no wire format, no Kubernetes client: everything here is a value
//! or a function of values, tested by tables beside it.

pub mod codec;
pub mod duration;
pub mod event;
pub mod forecast;
pub mod github;
pub mod groups;
pub mod hra;
pub mod job_repos;
pub mod job_times;
pub mod ledger;
pub mod namespaces;
pub mod ownership;
pub mod planner;
pub mod report;
pub mod routing;
pub mod tombstones;
pub mod validate;
pub mod warm;
