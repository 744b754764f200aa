//! Keeping HRAs true to GitHub, the pure part: which hook deliveries to recover, what a
//! delivery's payload says, which reservations to check and what GitHub's answers mean. The
//! requests themselves are made in `crate::github`.

pub mod delivery;
pub mod hook;
pub mod payload;
pub mod rest;
pub mod verify;
