//! The one place Baton builds an HTTP client for a peer (the Graph API, HubSpot, the AI agent's
//! webhook, an LLM endpoint): rustls, a User-Agent naming Baton (some servers refuse requests
//! without one), a bound on connecting, and the call and silence bounds each peer chooses.

use std::time::Duration;

/// Sent with every request Baton makes.
pub const USER_AGENT: &str = concat!(
    "baton/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/baton-handoff/baton)"
);

/// How long connecting may take unless a peer says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The bounds of one peer's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// The whole call; `None` where the caller bounds each request itself (uploads of any size).
    pub call: Option<Duration>,
    /// The longest silence while reading an answer.
    pub read: Option<Duration>,
}

impl Timeouts {
    /// Every call bounded by `call` (and connecting by the shorter of it and [`CONNECT_TIMEOUT`]).
    pub fn call(call: Duration) -> Self {
        Self {
            connect: call.min(CONNECT_TIMEOUT),
            call: Some(call),
            read: None,
        }
    }
}

/// Why a client could not be built (the TLS backend failed to start).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for {peer}")]
pub struct ClientError {
    pub peer: &'static str,
    #[source]
    pub source: reqwest::Error,
}

/// A client for `peer` (named in the error) with `timeouts`.
pub fn client(peer: &'static str, timeouts: Timeouts) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(timeouts.connect);
    if let Some(call) = timeouts.call {
        builder = builder.timeout(call);
    }
    if let Some(read) = timeouts.read {
        builder = builder.read_timeout(read);
    }
    builder
        .build()
        .map_err(|source| ClientError { peer, source })
}
