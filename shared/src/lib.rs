//! Baton's shared library: what two or more of its functions use.
//!
//! - [`whatsapp`]: Meta's webhook payload model, signature and handshake verification.
//! - [`domain`]: pure, synchronous logic: conversation keys, delivery records, the reply window.
//! - [`store`]: storage ports with DynamoDB and embedded adapters.
//! - [`config`]: typed configuration read once from the environment.

pub mod config;
pub mod domain;
pub mod store;
pub mod whatsapp;
