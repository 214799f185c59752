//! The handoff function's logic: detecting that a person must take over, the transcript, the
//! insights and copying the customer's media.

pub mod detect;
pub mod insights;
pub mod llm;
pub mod media;
mod phrases;
pub mod process;
pub mod text;
pub mod transcript;

pub use detect::{Detection, DetectionKind, Detector};
pub use process::{HandoffSettings, Outcome, ProcessError, Processor};
