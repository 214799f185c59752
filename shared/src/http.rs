//! The HTTP client Baton's own calls use (the Graph API's send endpoint, the AI agent's webhook):
//! rustls, a User-Agent (some servers refuse requests without one) and a bound on each call.

use std::time::Duration;

pub const USER_AGENT: &str = concat!("baton/", env!("CARGO_PKG_VERSION"));

pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}
