//! The pure, synchronous core: conversation keys, delivery records, agent events, handoff
//! records and the reply window. Nothing here does I/O.

pub mod handoff;
pub mod intake;
pub mod records;
pub mod ticket;
pub mod trail;
pub mod window;

pub use handoff::*;
pub use intake::{MAX_BODY_BYTES, build_batch};
pub use records::*;
pub use ticket::{
    CALLBACK_PREFIX, EventTrail, Owner, REPLY_PROPERTY, TicketEvent, TicketEventKind, TicketLink,
    parse_callback_data,
};
pub use trail::{FileStep, HubspotTrail, Step, StepState, TrailError, TrailStatus};
pub use window::ReplyWindow;
