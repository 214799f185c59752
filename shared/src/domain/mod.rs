//! The pure, synchronous core: conversation keys, the records a delivery produces, and the reply
//! window. Nothing here does I/O.

pub mod intake;
pub mod records;
pub mod window;

pub use intake::{MAX_BODY_BYTES, build_batch};
pub use records::*;
pub use window::ReplyWindow;
