//! Baton's shared library: what two or more of its functions use.
//!
//! - [`whatsapp`]: Meta's webhook payload model, signature and handshake verification.
//! - [`agent`]: the AI agent's events.
//! - [`domain`]: pure, synchronous logic: conversation keys, records, the reply window.
//! - [`handoff`]: detection, transcript, insights and media copying.
//! - [`store`]: storage ports with the DynamoDB adapter; [`objects`]: object storage with S3.
//! - [`config`]: typed configuration read once from the environment.

pub mod agent;
pub mod clock;
pub mod config;
pub mod domain;
pub mod html;
pub mod http;
pub mod media_keys;
pub mod objects;
pub mod observe;
pub mod retry;
pub mod session;
pub mod store;
pub mod stream;
pub mod transcript;
pub mod whatsapp;
