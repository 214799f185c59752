//! Meta's WhatsApp Cloud API as Baton receives it: the webhook payload model, the signature on
//! each delivery and the verification handshake.

pub mod graph;
pub mod handshake;
pub mod payload;
pub mod routing;
pub mod signature;

pub use handshake::{HandshakeError, verify_handshake};
pub use payload::*;
pub use signature::{AppSecrets, SIGNATURE_HEADER, SignatureError, sign};
