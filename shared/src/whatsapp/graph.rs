//! Where Meta's Graph API is and how patient to be with it: the media download (the handoff
//! function) and the send endpoint (the HubSpot function) use the same settings.

use std::time::Duration;

use secrecy::SecretString;

/// Where the Graph API is and how patient to be with it.
#[derive(Clone)]
pub struct GraphConfig {
    /// `https://graph.facebook.com` unless `GRAPH_API_BASE_URL` says otherwise.
    pub base_url: String,
    /// `GRAPH_API_VERSION`, e.g. `v23.0`.
    pub version: String,
    /// `WHATSAPP_ACCESS_TOKEN`; without it nothing can be downloaded.
    pub token: Option<SecretString>,
    /// Attempts per file within one call (lookup and download together).
    pub attempts: u32,
    /// First pause between attempts; doubled each time.
    pub backoff: Duration,
    pub connect_timeout: Duration,
    /// Longest silence from the server before an attempt is given up.
    pub read_timeout: Duration,
    /// Longest one attempt (lookup and whole download) may take.
    pub attempt_timeout: Duration,
}

impl std::fmt::Debug for GraphConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphConfig")
            .field("base_url", &self.base_url)
            .field("version", &self.version)
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl GraphConfig {
    pub const DEFAULT_BASE_URL: &'static str = "https://graph.facebook.com";
    pub const DEFAULT_VERSION: &'static str = "v23.0";

    pub fn new(
        base_url: impl Into<String>,
        version: impl Into<String>,
        token: Option<SecretString>,
    ) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            version: version.into().trim_matches('/').to_owned(),
            token,
            attempts: 3,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(120),
        }
    }
}
