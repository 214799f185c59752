//! `baton-local`: Baton's functions in one process, without AWS. It serves the webhook function's
//! own handler on `BATON_LISTEN` and keeps its data in an embedded database under
//! `BATON_DATA_DIR` — or, when `TABLE_NAME` or an AWS endpoint is configured, in DynamoDB.

pub mod demo;
pub mod doctor;
pub mod forget;
pub mod fs_objects;
pub mod hubspot_app;
pub mod lanes;
pub mod redb_store;
pub mod smoke;
pub mod stream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs_objects::FsObjectStore;
use crate::redb_store::RedbStore;
use baton_handoff::HandoffConfig;
use baton_handoff::Processor;
use baton_handoff::bedrock::BedrockInsights;
use baton_handoff::copies::{TokioCopyQueue, run_local_copies};
use baton_hubspot::{Deliverer, HubspotClient};
use baton_shared::config::{
    self, AGENT_EVENTS_SECRET, APP_SECRET, ConfigError, MEDIA_BUCKET, Source, TABLE_NAME,
    VERIFY_TOKEN,
};
use baton_shared::domain::Change;
use baton_shared::objects::{ObjectStore, S3Store};
use baton_shared::retry::Classify as _;
use baton_shared::store::{AfterStore, DynamoDbStore, HandoffStore, Store, StoreError};
use baton_shared::whatsapp::{AppSecrets, sign};
use baton_webhook::Webhook;
use baton_webhook::config::WebhookSecrets;
use baton_webhook::session_page::SessionPages;
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub const LISTEN: &str = "BATON_LISTEN";
pub const DATA_DIR: &str = "BATON_DATA_DIR";
pub const PUBLIC_BASE_URL: &str = config::PUBLIC_BASE_URL;
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = ".baton";
const LOCAL_SECRETS_FILE: &str = "local-secrets.json";

/// Where `baton-local` keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// redb database file under the data directory.
    Embedded(PathBuf),
    /// A DynamoDB table; `create` when it points at a local emulator, which has no stack to own it.
    DynamoDb { table: String, create: bool },
}

/// `baton-local`'s configuration: the webhook's settings plus where to listen and store.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub public_base_url: Option<String>,
    pub store: StoreChoice,
    pub secrets: WebhookSecrets,
    /// True when the app secret or verify token were generated for local use.
    pub generated_secrets: bool,
    /// True when the agent events secret was generated for local use.
    pub generated_agent_secret: bool,
    pub handoff: HandoffConfig,
    pub hubspot: baton_hubspot::HubspotConfig,
    /// S3 bucket for media and transcripts (`MEDIA_BUCKET`); else files under the data directory.
    pub media_bucket: Option<String>,
    /// How long the file links on a session page work (`SESSION_MEDIA_URL_SECS`).
    pub session_media_url_secs: u64,
}

/// A source with fallbacks for what `baton-local` can choose itself.
struct WithDefaults<'a> {
    src: &'a dyn Source,
    defaults: Vec<(&'static str, String)>,
}

impl Source for WithDefaults<'_> {
    fn get(&self, name: &str) -> Option<String> {
        config::optional(self.src, name).or_else(|| {
            self.defaults
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
    }
}

/// Secrets generated for a local run, kept so that a restart keeps the same ones.
#[derive(Serialize, Deserialize)]
struct LocalSecrets {
    app_secret: String,
    verify_token: String,
    #[serde(default)]
    agent_events_secret: Option<String>,
    #[serde(default)]
    session_link_secret: Option<String>,
}

fn random_hex(bytes: usize) -> Result<String, ConfigError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| ConfigError::Invalid {
        name: APP_SECRET,
        reason: format!("no randomness to generate a local secret: {e}"),
    })?;
    Ok(hex::encode(buf))
}

/// Reads the local secrets file, or creates it with fresh random values.
fn local_secrets(data_dir: &Path) -> Result<LocalSecrets, ConfigError> {
    let path = data_dir.join(LOCAL_SECRETS_FILE);
    let invalid = |reason: String| ConfigError::Invalid {
        name: DATA_DIR,
        reason,
    };
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut secrets: LocalSecrets = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("{} is unreadable: {e}", path.display())))?;
        if secrets.agent_events_secret.is_none() || secrets.session_link_secret.is_none() {
            // Written by an older baton-local: add the secrets it did not have.
            if secrets.agent_events_secret.is_none() {
                secrets.agent_events_secret = Some(random_hex(32)?);
            }
            if secrets.session_link_secret.is_none() {
                secrets.session_link_secret = Some(random_hex(32)?);
            }
            let text = serde_json::to_string_pretty(&secrets).expect("serialisable");
            let tmp = path.with_extension("json.new");
            let _ = std::fs::remove_file(&tmp);
            write_private(&tmp, text.as_bytes())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| invalid(format!("cannot write {}: {e}", path.display())))?;
        }
        return Ok(secrets);
    }
    let secrets = LocalSecrets {
        app_secret: random_hex(32)?,
        verify_token: random_hex(16)?,
        agent_events_secret: Some(random_hex(32)?),
        session_link_secret: Some(random_hex(32)?),
    };
    std::fs::create_dir_all(data_dir)
        .map_err(|e| invalid(format!("cannot create {}: {e}", data_dir.display())))?;
    let text = serde_json::to_string_pretty(&secrets).expect("serialisable");
    write_private(&path, text.as_bytes())
        .map_err(|e| invalid(format!("cannot write {}: {e}", path.display())))?;
    Ok(secrets)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

impl LocalConfig {
    /// Reads the configuration. Unlike the Lambda, `baton-local` runs with no settings at all:
    /// it generates an app secret and verify token and keeps them in the data directory.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let listen_text =
            config::optional(src, LISTEN).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().map_err(|e| ConfigError::Invalid {
            name: LISTEN,
            reason: format!("{listen_text:?} is not an address like 127.0.0.1:3000 ({e})"),
        })?;
        let data_dir = PathBuf::from(
            config::optional(src, DATA_DIR).unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()),
        );
        let public_base_url =
            config::optional(src, PUBLIC_BASE_URL).map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &public_base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError::Invalid {
                name: PUBLIC_BASE_URL,
                reason: format!("{url:?} is not an http(s) URL"),
            });
        }
        let endpoint = config::optional(src, "AWS_ENDPOINT_URL_DYNAMODB")
            .or_else(|| config::optional(src, "AWS_ENDPOINT_URL"));
        let store = match (config::optional(src, TABLE_NAME), endpoint) {
            (None, None) => StoreChoice::Embedded(data_dir.clone()),
            (table, endpoint) => StoreChoice::DynamoDb {
                table: table.unwrap_or_else(|| "baton".to_owned()),
                create: endpoint.is_some(),
            },
        };
        let (app, token) = (
            config::optional(src, APP_SECRET),
            config::optional(src, VERIFY_TOKEN),
        );
        let agent = config::optional(src, AGENT_EVENTS_SECRET);
        let generated_secrets = app.is_none() || token.is_none();
        let generated_agent_secret = agent.is_none();
        let session_secret = config::optional(src, baton_hubspot::config::SESSION_LINK_SECRET);
        let local = if generated_secrets || generated_agent_secret || session_secret.is_none() {
            Some(local_secrets(&data_dir)?)
        } else {
            None
        };
        let session_secret = session_secret
            .or_else(|| local.as_ref().and_then(|l| l.session_link_secret.clone()))
            .unwrap_or_default();
        let secrets =
            if let Some(local) = local.filter(|_| generated_secrets || generated_agent_secret) {
                let app = app.unwrap_or(local.app_secret);
                let token = token.unwrap_or(local.verify_token);
                let agent = agent.or(local.agent_events_secret).unwrap_or_default();
                WebhookSecrets {
                    app_secrets: AppSecrets::parse(&app).ok_or(ConfigError::Invalid {
                        name: APP_SECRET,
                        reason: "it lists no secret".to_owned(),
                    })?,
                    verify_token: SecretString::from(token),
                    agent_secrets: AppSecrets::parse(&agent),
                    hubspot_secrets: WebhookSecrets::hubspot_secrets(src),
                }
            } else {
                WebhookSecrets::from_source(src)?
            };
        if secrets.agent_secrets.is_none() {
            return Err(ConfigError::Invalid {
                name: AGENT_EVENTS_SECRET,
                reason: "it lists no secret".to_owned(),
            });
        }
        Ok(Self {
            listen,
            data_dir,
            store,
            secrets,
            generated_secrets,
            generated_agent_secret,
            handoff: HandoffConfig::from_source(src)?,
            // Session links point at this process unless PUBLIC_BASE_URL says otherwise.
            hubspot: baton_hubspot::HubspotConfig::from_source(&WithDefaults {
                src,
                defaults: vec![
                    (
                        PUBLIC_BASE_URL,
                        public_base_url
                            .clone()
                            .unwrap_or_else(|| format!("http://{listen}")),
                    ),
                    (baton_hubspot::config::SESSION_LINK_SECRET, session_secret),
                ],
            })?,
            public_base_url,
            media_bucket: config::optional(src, MEDIA_BUCKET),
            session_media_url_secs: config::number(
                src,
                config::SESSION_MEDIA_URL_SECS,
                baton_webhook::session_page::DEFAULT_MEDIA_URL_SECS,
            )?,
        })
    }

    pub async fn open_store(&self) -> Result<Stores, StoreError> {
        Ok(match &self.store {
            StoreChoice::Embedded(dir) => {
                let store = RedbStore::open(dir)?;
                Stores {
                    store: Arc::new(store.clone()),
                    handoff: Arc::new(store.clone()),
                    trails: Arc::new(store.clone()),
                    feed: Feed::Embedded(store),
                }
            }
            StoreChoice::DynamoDb { table, create } => {
                let aws = baton_shared::retry::load_aws().await;
                let store = DynamoDbStore::from_config(&aws, table.clone());
                if *create {
                    store.ensure_table().await?;
                }
                Stores {
                    store: Arc::new(store.clone()),
                    handoff: Arc::new(store.clone()),
                    trails: Arc::new(store),
                    feed: Feed::DynamoDb {
                        aws: Box::new(aws),
                        table: table.clone(),
                    },
                }
            }
        })
    }

    /// Where media copies and transcripts go: `MEDIA_BUCKET` on S3 (created when an endpoint
    /// points at a local server), else `objects/` under the data directory.
    pub async fn open_objects(&self) -> Result<Arc<dyn ObjectStore>, String> {
        match &self.media_bucket {
            Some(bucket) => {
                let aws = baton_shared::retry::load_aws().await;
                let s3 = S3Store::from_config(&aws, bucket.clone(), self.handoff.s3_path_style);
                if matches!(self.store, StoreChoice::DynamoDb { create: true, .. }) {
                    s3.ensure_bucket().await.map_err(|e| e.to_string())?;
                }
                Ok(Arc::new(s3))
            }
            None => Ok(Arc::new(FsObjectStore::new(self.data_dir.join("objects")))),
        }
    }

    /// The handoff function's logic over these stores, its media copies run as tasks of their
    /// own (as the Lambda runs them from a queue), so none holds up a conversation.
    pub async fn processor(
        &self,
        handoff: Arc<dyn HandoffStore>,
    ) -> Result<Arc<Processor>, String> {
        let objects = self.open_objects().await?;
        let (queue, jobs) = TokioCopyQueue::new();
        let mut processor = self
            .handoff
            .clone()
            .build(handoff, objects)
            .map_err(|e| e.to_string())?
            .with_copy_queue(Arc::new(queue));
        if let Some(model) = self.handoff.bedrock.clone() {
            // The AWS credentials and region of the environment, as the AWS CLI finds them.
            let aws = baton_shared::retry::load_aws().await;
            processor = processor.with_bedrock(BedrockInsights::new(&aws, model));
        }
        let processor = Arc::new(processor);
        tokio::spawn(run_local_copies(&processor, jobs));
        Ok(processor)
    }

    /// The HubSpot stage: calls `HUBSPOT_BASE_URL` with `HUBSPOT_ACCESS_TOKEN`, or without a
    /// token writes the requests it would send to `BATON_DATA_DIR/hubspot-outbox/`.
    pub async fn deliverer(&self, trails: Arc<dyn AfterStore>) -> Result<Deliverer, String> {
        let objects = self.open_objects().await?;
        let h = &self.hubspot;
        let client = match &h.token {
            Some(token) => HubspotClient::http(&h.base_url, token.clone(), h.limits, h.timeout)
                .map_err(|e| e.to_string())?,
            None => HubspotClient::outbox(baton_hubspot::outbox::OutboxTransport::open(
                self.outbox_dir(),
                &h.base_url,
            )?),
        };
        Ok(Deliverer::new(h.clone(), Some(client), trails, objects))
    }

    /// This configuration once the listener is bound to `bound`: with port 0 the system chose
    /// the port, and the session links (and the URL HubSpot's signatures cover) must carry it.
    pub fn bound_to(&self, bound: SocketAddr) -> Self {
        let mut cfg = self.clone();
        cfg.listen = bound;
        if cfg.public_base_url.is_none()
            && let Some(links) = &mut cfg.hubspot.sessions
        {
            links.base_url = format!("http://{bound}");
        }
        cfg
    }

    /// The webhook with the session pages (`/sessions/{id}`) the HubSpot note links to.
    pub async fn webhook(&self, stores: &Stores) -> Result<Webhook, String> {
        let app =
            Webhook::new(stores.store.clone(), self.secrets.clone()).with_public_base_url(Some(
                self.public_base_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", self.listen)),
            ));
        let Some(links) = self.hubspot.sessions.clone() else {
            return Ok(app);
        };
        let pages = SessionPages::new(
            stores.handoff.clone(),
            stores.trails.clone(),
            self.open_objects().await?,
            links,
        )
        .with_media_url_ttl(std::time::Duration::from_secs(self.session_media_url_secs));
        Ok(app.with_sessions(pages))
    }

    /// Deletes everything stored about one customer from the DynamoDB table and the media
    /// bucket (or directory); see [`crate::forget`].
    pub async fn forget_customer(&self, customer: &str) -> Result<forget::ForgetReport, String> {
        let StoreChoice::DynamoDb { table, .. } = &self.store else {
            return Err(
                "forget-customer works on a DynamoDB table: set TABLE_NAME (and AWS credentials, \
                 or AWS_ENDPOINT_URL for a local one). The embedded store is for development; \
                 delete BATON_DATA_DIR to remove everything it holds"
                    .to_owned(),
            );
        };
        let aws = baton_shared::retry::load_aws().await;
        let store = DynamoDbStore::from_config(&aws, table.clone());
        let objects = self.open_objects().await?;
        forget::forget_customer(&store, objects.as_ref(), customer).await
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("hubspot-outbox")
    }

    pub fn describe_store(&self) -> String {
        match &self.store {
            StoreChoice::Embedded(dir) => {
                format!("embedded database {}", dir.join("baton.redb").display())
            }
            StoreChoice::DynamoDb { table, .. } => format!("DynamoDB table {table}"),
        }
    }
}

/// The stores `baton-local` runs on, and where it reads their changes.
pub struct Stores {
    pub store: Arc<dyn Store>,
    pub handoff: Arc<dyn HandoffStore>,
    pub trails: Arc<dyn AfterStore>,
    pub feed: Feed,
}

/// Where the stages read the store's changes.
#[derive(Clone)]
pub enum Feed {
    /// The embedded store's change feed; each stage keeps its own cursor.
    Embedded(RedbStore),
    /// The DynamoDB table's stream, read like Lambda's event source mappings read it.
    DynamoDb {
        aws: Box<aws_config::SdkConfig>,
        table: String,
    },
}

/// How long one handoff may take in `baton-local` (the Lambda has its own timeout).
const LOCAL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// A function run as a stage: fed the embedded store's changes, or the table's stream exactly as
/// Lambda's event source mapping feeds it (filtered as template.yaml filters it).
#[derive(Clone)]
pub enum Stage {
    Handoff(Arc<Processor>),
    Hubspot(Arc<Deliverer>),
}

impl Stage {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Handoff(_) => "handoff",
            Self::Hubspot(_) => "hubspot",
        }
    }

    /// Handles one change of the embedded feed: `Err` when a retry could fix it.
    pub(crate) async fn on_change(&self, change: &Change) -> Result<(), String> {
        let (result, retryable) = match (self, change) {
            (Self::Handoff(p), _) => match p.process(change).await {
                Ok(_) => return Ok(()),
                Err(e) => (e.to_string(), e.is_retryable()),
            },
            (Self::Hubspot(d), Change::Handoff(h)) => {
                match d
                    .deliver(h, tokio::time::Instant::now() + LOCAL_DEADLINE)
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) => (e.log_summary(), e.is_retryable()),
                }
            }
            (Self::Hubspot(d), Change::TicketEvent(e)) => {
                match d
                    .ticket_event(e, tokio::time::Instant::now() + LOCAL_DEADLINE)
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) => (e.log_summary(), e.is_retryable()),
                }
            }
            (Self::Hubspot(_), _) => return Ok(()),
        };
        if retryable {
            return Err(result);
        }
        tracing::error!(stage = self.name(), error = %result, "change dropped: it can never be processed");
        Ok(())
    }

    /// Hands every pending change of the embedded feed over, each conversation's in order and
    /// the conversations side by side ([`lanes`]), and waits for them; returns how many.
    pub async fn drain_embedded(&self, store: &RedbStore) -> Result<usize, String> {
        lanes::Lanes::new(self.clone()).drain(store).await
    }

    /// Reads the table's stream once and hands each shard's records that pass the function's
    /// filter to its batch handler; returns how many records were handed over.
    pub async fn drain_stream(&self, reader: &mut stream::StreamReader) -> Result<usize, String> {
        let mut done = 0;
        for batch in reader.poll().await? {
            let mut event = aws_lambda_events::event::dynamodb::Event::default();
            event.records = batch
                .records
                .iter()
                .filter(|r| match self {
                    Self::Handoff(_) => baton_handoff::passes_filter(r),
                    Self::Hubspot(_) => baton_hubspot::passes_filter(r),
                })
                .cloned()
                .collect();
            if event.records.is_empty() {
                reader.settle(&batch, None);
                continue;
            }
            let handed = event.records.len();
            let response = match self {
                Self::Handoff(p) => baton_handoff::handle_batch(p, event).await,
                Self::Hubspot(d) => {
                    let deadline = tokio::time::Instant::now() + LOCAL_DEADLINE;
                    baton_hubspot::handle_batch(d, event, deadline).await
                }
            };
            let failed = response
                .batch_item_failures
                .first()
                .and_then(|f| f.item_identifier.clone());
            done += handed;
            reader.settle(&batch, failed.as_deref());
        }
        Ok(done)
    }

    /// One pass over whatever is pending in `feed`.
    pub async fn drain(
        &self,
        feed: &Feed,
        reader: &mut Option<stream::StreamReader>,
        data_dir: &Path,
    ) -> Result<usize, String> {
        match feed {
            Feed::Embedded(store) => self.drain_embedded(store).await,
            Feed::DynamoDb { aws, table } => {
                if reader.is_none() {
                    // Each stage keeps its own positions, as each event source mapping does.
                    let file = match self {
                        Self::Handoff(_) => data_dir.join(format!("stream-positions-{table}.json")),
                        Self::Hubspot(_) => {
                            data_dir.join(format!("stream-positions-hubspot-{table}.json"))
                        }
                    };
                    *reader = Some(stream::StreamReader::open(aws, table, Some(file)).await?);
                }
                self.drain_stream(reader.as_mut().expect("opened above"))
                    .await
            }
        }
    }
}

/// Runs a stage forever, polling the feed: the embedded feed through the stage's lanes, the
/// table's stream a batch at a time as Lambda reads it.
pub async fn run_stage(stage: Stage, feed: Feed, data_dir: PathBuf) {
    let pause = std::time::Duration::from_millis(250);
    if let Feed::Embedded(store) = &feed {
        let lanes = lanes::Lanes::new(stage.clone());
        let mut read = loop {
            match store.cursor(stage.name()).await {
                Ok(at) => break at,
                Err(e) => {
                    tracing::warn!(stage = stage.name(), error = %e, "the stage will try again");
                    tokio::time::sleep(pause * 4).await;
                }
            }
        };
        loop {
            match lanes.pump(store, &mut read).await {
                Ok(0) => lanes.wait(pause).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(stage = stage.name(), error = %e, "the stage will try again");
                    tokio::time::sleep(pause * 4).await;
                }
            }
            if lanes.in_flight() == 0 {
                tokio::time::sleep(pause).await;
            }
        }
    }
    let mut reader = None;
    loop {
        if let Err(e) = stage.drain(&feed, &mut reader, &data_dir).await {
            tracing::warn!(stage = stage.name(), error = %e, "the stage will try again");
            tokio::time::sleep(pause * 4).await;
        }
        tokio::time::sleep(pause).await;
    }
}

/// A short delivery to try the server with: one text message from a test customer.
pub fn sample_delivery() -> Bytes {
    Bytes::from_static(
        br#"{"object":"whatsapp_business_account","entry":[{"id":"0","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"100000000000000"},"contacts":[{"profile":{"name":"Test Customer"},"wa_id":"15550001234"}],"messages":[{"from":"15550001234","id":"wamid.baton-local-example","timestamp":"1767225600","type":"text","text":{"body":"Hello! Can I talk to a person?"}}]}}]}]}"#,
    )
}

/// What `baton-local` prints when it starts: where to point Meta, and a request to try.
pub fn banner(cfg: &LocalConfig, bound: SocketAddr) -> String {
    let local_url = format!("http://{bound}");
    let base = cfg
        .public_base_url
        .clone()
        .unwrap_or_else(|| local_url.clone());
    let body = sample_delivery();
    let signature = sign(cfg.secrets.app_secrets.current().expose_secret(), &body);
    let body_text = std::str::from_utf8(&body).expect("sample is UTF-8");
    let mut out = format!(
        "Baton (local) is listening on {local_url}\n\
         Store: {}\n\n\
         In Meta's App Dashboard > WhatsApp > Configuration, paste:\n\
         \x20 Callback URL: {base}/webhook\n\
         \x20 Verify token: {}\n",
        cfg.describe_store(),
        cfg.secrets.verify_token.expose_secret(),
    );
    if cfg.public_base_url.is_none() {
        out.push_str("  (Meta needs a public HTTPS URL: put a tunnel in front of this address and set PUBLIC_BASE_URL to it.)\n");
    }
    if cfg.generated_secrets {
        out.push_str(&format!(
            "  The app secret and verify token were generated for local use and are kept in {}.\n  \
             For real traffic set WHATSAPP_APP_SECRET to your Meta App Secret (App Dashboard > Settings > Basic).\n",
            cfg.data_dir.join(LOCAL_SECRETS_FILE).display()
        ));
    }
    let agent_secret_source = if cfg.generated_agent_secret {
        format!(
            "the agent_events_secret in {}",
            cfg.data_dir.join(LOCAL_SECRETS_FILE).display()
        )
    } else {
        "AGENT_EVENTS_SECRET".to_owned()
    };
    out.push_str(&format!(
        "\nYour AI agent posts its events to {base}/agent/events, signed in X-Baton-Signature-256 with {agent_secret_source}.\n\
         Handoffs (transcripts and media copies) go to {}.\n",
        match &cfg.media_bucket {
            Some(b) => format!("S3 bucket {b}"),
            None => cfg.data_dir.join("objects").display().to_string(),
        }
    ));
    if cfg.handoff.graph.token.is_none() {
        out.push_str("  (Set WHATSAPP_ACCESS_TOKEN so the customer's media can be downloaded from WhatsApp.)\n");
    }
    match &cfg.hubspot.token {
        Some(_) => out.push_str(&format!(
            "Tickets are opened in HubSpot ({}).\n",
            cfg.hubspot.base_url
        )),
        None => out.push_str(&format!(
            "Without HUBSPOT_ACCESS_TOKEN the HubSpot requests are written to {} instead of sent.\n",
            cfg.outbox_dir().display()
        )),
    }
    match (cfg.hubspot.credential.features_off(), &cfg.secrets.hubspot_secrets) {
        (Some(off), _) => out.push_str(&format!("{off}.\n")),
        (None, Some(_)) => out.push_str(&format!(
            "Reps' replies and ticket closes arrive from your HubSpot app's webhook at {base}/hubspot/events (X-HubSpot-Signature-v3, HUBSPOT_APP_SECRET).\n"
        )),
        (None, None) => out.push_str(&format!(
            "Set HUBSPOT_APP_SECRET (your HubSpot app's client secret) to take reps' replies and ticket closes at {base}/hubspot/events.\n"
        )),
    }
    out.push_str(&format!(
        "\nTry it (a signed delivery with one text message; run it twice to see the duplicate caught):\n  \
         curl -i -X POST {local_url}/webhook -H 'Content-Type: application/json' \\\n    \
         -H 'X-Hub-Signature-256: {signature}' \\\n    --data-binary '{body_text}'\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("baton-local-cfg-{}", random_hex(8).unwrap()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn runs_with_no_settings_and_keeps_generated_secrets_across_restarts() {
        let d = dir();
        let data = d.to_str().unwrap();
        let first = LocalConfig::from_source(&[(DATA_DIR, data)]).unwrap();
        assert!(first.generated_secrets);
        assert_eq!(first.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(first.store, StoreChoice::Embedded(d.clone()));
        assert!(first.generated_agent_secret);
        let second = LocalConfig::from_source(&[(DATA_DIR, data)]).unwrap();
        assert_eq!(
            first
                .secrets
                .agent_secrets
                .as_ref()
                .unwrap()
                .current()
                .expose_secret(),
            second
                .secrets
                .agent_secrets
                .as_ref()
                .unwrap()
                .current()
                .expose_secret()
        );
        assert_eq!(
            first.secrets.verify_token.expose_secret(),
            second.secrets.verify_token.expose_secret()
        );
        assert_eq!(
            first.secrets.app_secrets.current().expose_secret(),
            second.secrets.app_secrets.current().expose_secret()
        );
    }

    #[test]
    fn configured_secrets_win_and_bad_settings_are_named() {
        let d = dir();
        let data = d.to_str().unwrap();
        let cfg = LocalConfig::from_source(&[
            (DATA_DIR, data),
            (APP_SECRET, "s1,s2"),
            (VERIFY_TOKEN, "tok"),
            (AGENT_EVENTS_SECRET, "agent-secret"),
            (baton_hubspot::config::SESSION_LINK_SECRET, "session-secret"),
        ])
        .unwrap();
        assert!(!cfg.generated_secrets && !cfg.generated_agent_secret);
        assert_eq!(cfg.secrets.app_secrets.len(), 2);
        assert!(
            !d.join(LOCAL_SECRETS_FILE).exists(),
            "nothing generated when every secret is set"
        );
        // Without a session link key one is generated and kept, so links survive a restart.
        let link = |cfg: &LocalConfig| {
            cfg.hubspot
                .sessions
                .as_ref()
                .expect("session links")
                .link("ho_1", 0)
        };
        let without = [
            (DATA_DIR, data),
            (APP_SECRET, "s1"),
            (VERIFY_TOKEN, "tok"),
            (AGENT_EVENTS_SECRET, "agent-secret"),
        ];
        let first = link(&LocalConfig::from_source(&without).unwrap());
        assert!(d.join(LOCAL_SECRETS_FILE).exists());
        assert_eq!(first, link(&LocalConfig::from_source(&without).unwrap()));
        assert!(
            first.starts_with("http://127.0.0.1:3000/sessions/ho_1?t="),
            "{first}"
        );

        let err = LocalConfig::from_source(&[(DATA_DIR, data), (LISTEN, "localhost")]).unwrap_err();
        assert!(
            err.to_string().starts_with("BATON_LISTEN is invalid"),
            "{err}"
        );
        let err = LocalConfig::from_source(&[(DATA_DIR, data), (PUBLIC_BASE_URL, "example.com")])
            .unwrap_err();
        assert!(
            err.to_string().starts_with("PUBLIC_BASE_URL is invalid"),
            "{err}"
        );
    }

    #[test]
    fn an_aws_endpoint_or_table_selects_dynamodb() {
        let d = dir();
        let data = d.to_str().unwrap();
        let cfg = LocalConfig::from_source(&[
            (DATA_DIR, data),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:8000"),
        ])
        .unwrap();
        assert_eq!(
            cfg.store,
            StoreChoice::DynamoDb {
                table: "baton".into(),
                create: true
            }
        );
        let cfg =
            LocalConfig::from_source(&[(DATA_DIR, data), (TABLE_NAME, "prod-table")]).unwrap();
        assert_eq!(
            cfg.store,
            StoreChoice::DynamoDb {
                table: "prod-table".into(),
                create: false
            }
        );
    }

    #[test]
    fn banner_names_the_callback_url_token_and_a_correctly_signed_example() {
        let d = dir();
        let cfg = LocalConfig::from_source(&[
            (DATA_DIR, d.to_str().unwrap()),
            (APP_SECRET, "the-app-secret"),
            (VERIFY_TOKEN, "the-verify-token"),
            (PUBLIC_BASE_URL, "https://baton.example.com/"),
        ])
        .unwrap();
        let text = banner(&cfg, "127.0.0.1:3999".parse().unwrap());
        assert!(
            text.contains("Callback URL: https://baton.example.com/webhook"),
            "{text}"
        );
        assert!(text.contains("Verify token: the-verify-token"), "{text}");
        assert!(
            text.contains(&sign("the-app-secret", &sample_delivery())),
            "{text}"
        );
        assert!(
            text.contains("curl -i -X POST http://127.0.0.1:3999/webhook"),
            "{text}"
        );
        assert!(
            !text.contains("the-app-secret"),
            "the app secret itself is never printed"
        );
        assert!(
            text.contains("Set HUBSPOT_APP_SECRET")
                && text.contains("https://baton.example.com/hubspot/events"),
            "{text}"
        );
        let cfg = LocalConfig::from_source(&[
            (DATA_DIR, d.to_str().unwrap()),
            (config::HUBSPOT_APP_SECRET, "the-client-secret"),
        ])
        .unwrap();
        let text = banner(&cfg, "127.0.0.1:3999".parse().unwrap());
        assert!(
            text.contains(
                "arrive from your HubSpot app's webhook at http://127.0.0.1:3999/hubspot/events"
            ),
            "{text}"
        );
        assert!(!text.contains("the-client-secret"), "never printed");
        // A service key: the banner says what it leaves off, and why.
        let cfg = LocalConfig::from_source(&[
            (DATA_DIR, d.to_str().unwrap()),
            ("HUBSPOT_CREDENTIAL", "service-key"),
        ])
        .unwrap();
        let text = banner(&cfg, "127.0.0.1:3999".parse().unwrap());
        assert!(
            text.contains("replies written in HubSpot, closing a ticket and deleting one reach neither the customer nor the AI agent, because HubSpot sends a service key no webhooks"),
            "{text}"
        );
    }
}
