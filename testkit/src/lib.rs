//! Baton's test kit, used only as a dev-dependency by the crates' tests and benchmarks: the peers
//! Baton talks to, as local servers that enforce the real contract and inject faults, and the
//! builders the tests share.
//!
//! - [`hubspot`]: the HubSpot CRM, Files and pipelines APIs.
//! - [`graph`]: Meta's Graph API (media lookup and download, the send endpoint).
//! - [`lambda_runtime`]: Lambda's Runtime API, to run a function's binary as Lambda would, and
//!   the emulators' stack (DynamoDB Local, s3s-fs, moto).
//! - [`store_contract`]: the contract every store adapter must meet.
//! - [`bodies`], [`fixtures`]: Meta-shaped webhook bodies, records, a benchmark's figures.

pub mod bedrock;
pub mod bodies;
pub mod fixtures;
pub mod graph;
pub mod hubspot;
pub mod lambda_runtime;
pub mod store_contract;
