//! The HubSpot function's state, built once per container: its HubSpot client, settings, store
//! and media bucket, the portal's set-up (read on first use), the Graph sender for replies and
//! the AI agent's webhook. What it does lives beside it: the handoff's steps ([`crate::handoff`]),
//! each ticket event ([`crate::events`]), the trail ([`crate::trail`]).

use std::sync::Arc;

use baton_shared::domain::{HandoffRecord, MediaRecord};
use baton_shared::http::ClientError;
use baton_shared::media_keys::safe_name;
use baton_shared::objects::ObjectStore;
use baton_shared::retry::Backoff;
use baton_shared::store::AfterStore;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::agent_webhook::AgentNotifier;
use crate::api::{self, NewFile};
use crate::client::HubspotClient;
use crate::config::HubspotConfig;
use crate::error::HubspotError;
use crate::graph_send::Sender;
use crate::portal::Portal;

/// How a ticket event that fails in a way a retry could fix is retried: 8 runs, a jittered pause
/// after each of 1 s doubling to 30 s (about 90 s in all), then it is parked.
pub const EVENT_RETRIES: Backoff = Backoff::new(
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(30),
    8,
);

pub struct Deliverer {
    pub(crate) client: Option<HubspotClient>,
    pub(crate) cfg: HubspotConfig,
    pub(crate) store: Arc<dyn AfterStore>,
    pub(crate) objects: Arc<dyn ObjectStore>,
    portal: OnceCell<Portal>,
    /// Sends reps' replies; `None` without a WhatsApp token.
    pub(crate) sender: Option<Sender>,
    /// Tells the AI agent who owns the conversation; `None` without `AGENT_WEBHOOK_URL`.
    pub(crate) agent: Option<AgentNotifier>,
    /// How a ticket event that keeps failing is retried, and when it parks.
    pub(crate) event_retries: Backoff,
}

impl Deliverer {
    /// Retries ticket events as `retries` says (tests shorten the pauses).
    pub fn with_event_retries(mut self, retries: Backoff) -> Self {
        self.event_retries = retries;
        self
    }

    /// `client: None` means no token: every handoff is parked with a configuration error.
    pub fn new(
        cfg: HubspotConfig,
        client: Option<HubspotClient>,
        store: Arc<dyn AfterStore>,
        objects: Arc<dyn ObjectStore>,
    ) -> Self {
        let sender = cfg.graph.token.clone().and_then(|token| {
            Sender::new(&cfg.graph.base_url, &cfg.graph.version, token, cfg.timeout)
                .map(|s| s.with_thread_control_url(cfg.thread_control_url.clone()))
                .map_err(|e| tracing::error!(error = %e, "replies cannot be sent"))
                .ok()
        });
        let agent = cfg.agent_webhook.as_ref().and_then(|a| {
            let Some(secret) = a.secret.clone() else {
                tracing::error!("AGENT_WEBHOOK_URL is set but AGENT_EVENTS_SECRET is not: what the AI agent is told is parked until it is");
                return None;
            };
            AgentNotifier::new(&a.url, secret, cfg.timeout)
                .map_err(|e| tracing::error!(error = %e, "the AI agent cannot be told"))
                .ok()
        });
        Self {
            client,
            cfg,
            store,
            objects,
            portal: OnceCell::new(),
            sender,
            agent,
            event_retries: EVENT_RETRIES,
        }
    }

    /// The function's deliverer on `store` and `objects`. Without a token it still runs: every
    /// handoff is parked with the reason until the token is in the stack's secret.
    pub fn from_config(
        cfg: HubspotConfig,
        store: Arc<dyn AfterStore>,
        objects: Arc<dyn ObjectStore>,
    ) -> Result<Self, ClientError> {
        let client = HubspotClient::from_config(&cfg)?;
        if client.is_none() {
            tracing::error!(
                "HUBSPOT_ACCESS_TOKEN is not set: handoffs are parked until it is put into the stack's secret"
            );
        }
        if let Some(off) = cfg.credential.features_off() {
            tracing::warn!("{off}");
        }
        Ok(Self::new(cfg, client, store, objects))
    }

    pub fn client(&self) -> Option<&HubspotClient> {
        self.client.as_ref()
    }

    /// The portal's set-up, read once (the outbox assumes HubSpot's defaults).
    pub async fn portal(&self, deadline: Instant) -> Result<&Portal, HubspotError> {
        let client = self.require_client()?;
        self.portal
            .get_or_try_init(|| async {
                if client.is_outbox() {
                    Ok(Portal::assumed(&self.cfg))
                } else {
                    Portal::discover(client, &self.cfg, deadline).await
                }
            })
            .await
    }

    pub(crate) fn require_client(&self) -> Result<&HubspotClient, HubspotError> {
        self.client.as_ref().ok_or_else(|| {
            HubspotError::config(
                "setup",
                "HUBSPOT_ACCESS_TOKEN is not set: put the private app's token into the stack's secret, then replay the parked handoffs",
            )
        })
    }

    /// The signed link to the handoff's session page, when links are configured.
    pub(crate) fn session_link(&self, record: &HandoffRecord) -> Option<String> {
        // Signed at the handoff's time: every run writes the same link.
        self.cfg
            .sessions
            .as_ref()
            .map(|s| s.link(&record.id, record.created_at_ms / 1000))
    }

    /// Uploads the bucket's object `key` into the handoff's folder in HubSpot Files as `name`;
    /// the file's HubSpot id.
    pub(crate) async fn upload(
        &self,
        client: &HubspotClient,
        record: &HandoffRecord,
        key: &str,
        name: &str,
        content_type: &str,
        deadline: Instant,
    ) -> Result<String, HubspotError> {
        let call = api::upload_file(
            "files",
            NewFile {
                objects: self.objects.clone(),
                key: key.to_owned(),
                file_name: name.to_owned(),
                content_type: content_type.to_owned(),
                folder_path: format!("{}/{}", self.cfg.files_folder, record.id),
            },
        );
        let answer = client.call(&call, deadline).await?;
        if !answer.is_success() {
            return Err(answer.rejected("files"));
        }
        answer.id().ok_or_else(|| answer.rejected("files"))
    }
}

/// A customer's file's name in HubSpot Files: unique per message, safe, its extension kept.
pub(crate) fn hubspot_file_name(media: &MediaRecord) -> String {
    use sha2::Digest;
    let hash = hex::encode(&sha2::Sha256::digest(media.wamid.as_bytes())[..4]);
    format!("{hash}-{}", safe_name(&media.filename, 80))
}

/// A customer's file's content type, `application/octet-stream` when WhatsApp gave none.
pub(crate) fn content_type_of(media: &MediaRecord) -> String {
    media
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into())
}
