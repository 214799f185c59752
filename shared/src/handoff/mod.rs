//! The handoff function's logic: detecting that a person must take over, the transcript, the
//! insights and copying the customer's media.

pub mod detect;
mod phrases;
pub mod text;

pub use detect::{Detection, DetectionKind, Detector};
