//! A local Graph API that keeps Meta's media contract (whatsapp-contract.md §5, §7): the media
//! lookup needs the Bearer token, the download needs the token and a User-Agent, download URLs
//! expire, errors come in Graph's JSON shape. Each file can be told to fail, hang or be slow.
//!
//! It also plays Meta's Conversation Routing (whatsapp-routing-contract.md): per thread, who owns
//! it; sends by Baton (the escalation partner) take the thread, `thread_control` enforces who may
//! pass, take and release, and the routing webhooks Meta would send Baton (`standby` copies,
//! echoes, `control_passed`) are built here for the test to deliver.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::json;
use sha2::Digest;

pub const TOKEN: &str = "test-graph-token";
pub const VERSION: &str = "v23.0";
/// The id of the app the token belongs to (Baton's own Meta app).
pub const APP_ID: &str = "1234567890123456";
const APP_NAME: &str = "Baton";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The next `n` lookups answer 500.
    FailLookups(u32),
    /// Every download answers 500.
    FailDownloads,
    /// Downloads send the headers and then nothing.
    HangDownload,
    /// Downloads send 64 KiB every `ms` milliseconds.
    SlowDownload(u64),
    /// Downloads send the headers, stall this long, then send the file.
    StallDownload(Duration),
    /// The sha256 reported is not the file's.
    WrongSha,
    /// The lookup reports this size (the file itself is small).
    ClaimsSize(u64),
}

#[derive(Clone)]
pub struct MediaFile {
    pub bytes: Bytes,
    pub mime: String,
    pub fault: Fault,
}

pub fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

struct GraphState {
    base: Mutex<String>,
    files: Mutex<HashMap<String, MediaFile>>,
    /// Every message accepted by the send endpoint: (phone number id, body, wamid).
    sent: Mutex<Vec<(String, serde_json::Value, String)>>,
    /// Business numbers the token can read: id → (display number, verified name).
    phones: Mutex<HashMap<String, (String, String)>>,
    /// The next sends answer with this Graph error code (HTTP 400), as many times as counted.
    send_faults: Mutex<Vec<i64>>,
    /// WhatsApp Business Accounts: id → the apps subscribed to it, (id, name) in order.
    wabas: Mutex<HashMap<String, Vec<(String, String)>>>,
    /// Threads under Conversation Routing: (phone number id, customer) → owner. A thread not
    /// here is not routed: anyone may send.
    threads: Mutex<HashMap<(String, String), Owner>>,
    /// Baton's app is the business's escalation partner (else only a standby partner).
    escalation: std::sync::atomic::AtomicBool,
    /// Every accepted thread-control request's body.
    thread_calls: Mutex<Vec<serde_json::Value>>,
    /// The next thread-control requests answer these HTTP statuses (Meta's outage).
    thread_faults: Mutex<Vec<u16>>,
    /// The app secret an app access token (`<app id>|<app secret>`) must carry.
    app_secret: Mutex<String>,
    /// The webhook fields Baton's app is subscribed to.
    fields: Mutex<Vec<String>>,
    url_ttl_ms: u64,
    pub lookups: AtomicU32,
    pub downloads: AtomicU32,
    pub refused: AtomicU32,
}

#[derive(Clone)]
pub struct GraphServer {
    pub base_url: String,
    state: Arc<GraphState>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    graph_error_with(status, code, None, message)
}

/// [`graph_error`] with Graph's `error_subcode`.
fn graph_error_with(
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    message: &str,
) -> Response {
    let mut error =
        json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"});
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    (
        status,
        [("content-type", "application/json")],
        json!({ "error": error }).to_string(),
    )
        .into_response()
}

/// Graph's answer to an unknown version or a missing or wrong token.
fn refuse(state: &GraphState, version: &str, headers: &HeaderMap) -> Option<Response> {
    if version != VERSION {
        return Some(graph_error(
            StatusCode::BAD_REQUEST,
            2500,
            "Unknown path components",
        ));
    }
    if !bearer_ok(headers) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return Some(graph_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        ));
    }
    None
}

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

impl GraphServer {
    pub async fn start(url_ttl: Duration) -> Self {
        let state = Arc::new(GraphState {
            base: Mutex::new(String::new()),
            files: Mutex::new(HashMap::new()),
            url_ttl_ms: url_ttl.as_millis() as u64,
            lookups: AtomicU32::new(0),
            downloads: AtomicU32::new(0),
            refused: AtomicU32::new(0),
            sent: Mutex::new(Vec::new()),
            phones: Mutex::new(HashMap::new()),
            send_faults: Mutex::new(Vec::new()),
            wabas: Mutex::new(HashMap::new()),
            threads: Mutex::new(HashMap::new()),
            escalation: std::sync::atomic::AtomicBool::new(true),
            thread_calls: Mutex::new(Vec::new()),
            thread_faults: Mutex::new(Vec::new()),
            app_secret: Mutex::new(String::new()),
            fields: Mutex::new(vec!["messages".to_owned()]),
        });
        let app = axum::Router::new()
            .route(
                "/whatsapp_business/attachments/",
                axum::routing::get(download),
            )
            .route("/{version}/{media_id}", axum::routing::get(lookup))
            .route(
                "/{version}/{phone_number_id}/messages",
                axum::routing::post(send),
            )
            .route("/{version}/app", axum::routing::get(app))
            .route(
                "/{version}/{phone_number_id}/thread_control",
                axum::routing::post(thread_control),
            )
            .route(
                "/{version}/{app_id}/subscriptions",
                axum::routing::get(subscriptions),
            )
            .route(
                "/{version}/{waba_id}/subscribed_apps",
                axum::routing::get(subscribed_apps).post(subscribe),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        *state.base.lock().unwrap() = base_url.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base_url, state }
    }

    pub fn add(&self, id: &str, bytes: impl Into<Bytes>, mime: &str, fault: Fault) {
        self.state.files.lock().unwrap().insert(
            id.to_owned(),
            MediaFile {
                bytes: bytes.into(),
                mime: mime.to_owned(),
                fault,
            },
        );
    }

    /// A download URL as Meta would put in a webhook, valid for the server's TTL from now.
    pub fn fresh_url(&self, id: &str) -> String {
        format!(
            "{}/whatsapp_business/attachments/?mid={id}&ext={}",
            self.base_url,
            now_ms() + self.state.url_ttl_ms
        )
    }

    /// A download URL that expired a minute ago.
    pub fn expired_url(&self, id: &str) -> String {
        format!(
            "{}/whatsapp_business/attachments/?mid={id}&ext={}",
            self.base_url,
            now_ms() - 60_000
        )
    }

    /// Every message the send endpoint accepted: (phone number id, request body, wamid).
    pub fn sent(&self) -> Vec<(String, serde_json::Value, String)> {
        self.state.sent.lock().unwrap().clone()
    }

    /// A business number the token can read (`GET /{version}/{id}`).
    pub fn add_phone_number(&self, id: &str, display: &str, name: &str) {
        self.state
            .phones
            .lock()
            .unwrap()
            .insert(id.to_owned(), (display.to_owned(), name.to_owned()));
    }

    /// A WhatsApp Business Account the token can manage, with `apps` (id, name) subscribed.
    pub fn add_waba(&self, id: &str, apps: &[(&str, &str)]) {
        self.state.wabas.lock().unwrap().insert(
            id.to_owned(),
            apps.iter()
                .map(|(i, n)| ((*i).to_owned(), (*n).to_owned()))
                .collect(),
        );
    }

    /// The ids of the apps subscribed to a WABA.
    pub fn subscribed(&self, waba: &str) -> Vec<String> {
        self.state.wabas.lock().unwrap()[waba]
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Who owns the thread (after every request so far), if it is routed.
    pub fn thread_owner(&self, phone_number_id: &str, customer: &str) -> Option<Owner> {
        self.state
            .threads
            .lock()
            .unwrap()
            .get(&thread_key(phone_number_id, customer))
            .copied()
    }

    /// Routing starts for the thread with `owner` owning it (the AI agent, typically).
    pub fn route_thread(&self, phone_number_id: &str, customer: &str, owner: Owner) {
        self.state
            .threads
            .lock()
            .unwrap()
            .insert(thread_key(phone_number_id, customer), owner);
    }

    /// Baton's app's secret (its app access token is `<APP_ID>|<secret>`) and the webhook fields
    /// the app is subscribed to.
    pub fn set_app_subscriptions(&self, app_secret: &str, fields: &[&str]) {
        *self.state.app_secret.lock().unwrap() = app_secret.to_owned();
        *self.state.fields.lock().unwrap() = fields.iter().map(|f| (*f).to_owned()).collect();
    }

    /// Whether Baton's app is the escalation partner (true) or only a standby partner.
    pub fn set_escalation_partner(&self, escalation: bool) {
        self.state.escalation.store(escalation, Ordering::SeqCst);
    }

    /// The next thread-control request answers `status` (a 5xx: Meta is unavailable).
    pub fn fail_next_thread_control(&self, status: u16) {
        self.state.thread_faults.lock().unwrap().push(status);
    }

    /// Every accepted thread-control request.
    pub fn thread_calls(&self) -> Vec<serde_json::Value> {
        self.state.thread_calls.lock().unwrap().clone()
    }

    /// The `standby` copy of a customer's text message, as Meta sends it to a standby partner.
    pub fn standby_message(
        &self,
        phone_number_id: &str,
        customer: &str,
        name: &str,
        wamid: &str,
        timestamp: i64,
        text: &str,
    ) -> Vec<u8> {
        routing_body(
            "standby",
            json!({"messaging_product": "whatsapp", "metadata": metadata(phone_number_id),
                "standby": {"contacts": [{"profile": {"name": name}, "wa_id": customer}],
                    "messages": [{"from": customer, "id": wamid, "timestamp": timestamp.to_string(),
                        "type": "text", "text": {"body": text}}]}}),
        )
    }

    /// The `standby` echo of the thread owner's text reply.
    pub fn standby_echo(
        &self,
        phone_number_id: &str,
        customer: &str,
        wamid: &str,
        timestamp: i64,
        text: &str,
    ) -> Vec<u8> {
        routing_body(
            "standby",
            json!({"messaging_product": "whatsapp", "metadata": metadata(phone_number_id),
                "standby": {"message_echoes": [{"id": wamid, "timestamp": timestamp.to_string(),
                    "message": {"messaging_product": "whatsapp", "to": customer, "recipient_type": "individual",
                        "type": "text", "text": {"body": text, "preview_url": false}}}]}}),
        )
    }

    /// The AI agent passes the thread to Baton: the thread is Baton's, and this is the
    /// `control_passed` Meta sends it (with Meta's summary when given).
    pub fn pass_to_baton(
        &self,
        phone_number_id: &str,
        customer: &str,
        timestamp: i64,
        metadata_text: &str,
        summary: Option<&str>,
    ) -> Vec<u8> {
        self.route_thread(phone_number_id, customer, Owner::Baton);
        let mut passed = json!({"previous_owner_app_id": "1066355071287456",
            "previous_owner_app_role": "meta_business_agent", "previous_owner_role": "ai_agent",
            "new_owner_role": "escalation", "metadata": metadata_text});
        if let Some(text) = summary {
            passed["conversation_context"] = json!({"type": "summary", "summary": {"text": text}});
        }
        routing_body(
            "messaging_handovers",
            json!({"messaging_product": "whatsapp", "sender": {"phone_number": customer},
                "recipient": {"phone_number_id": phone_number_id, "display_phone_number": "15550783881"},
                "type": "control_passed", "timestamp": timestamp.to_string(), "control_passed": passed}),
        )
    }

    /// Another responder (the AI agent, say) takes the thread from Baton: this is the
    /// `control_taken` Meta sends Baton.
    pub fn take_from_baton(
        &self,
        phone_number_id: &str,
        customer: &str,
        timestamp: i64,
        metadata_text: &str,
    ) -> Vec<u8> {
        self.route_thread(phone_number_id, customer, Owner::Primary);
        routing_body(
            "messaging_handovers",
            json!({"messaging_product": "whatsapp", "sender": {"phone_number": customer},
                "recipient": {"phone_number_id": phone_number_id, "display_phone_number": "15550783881"},
                "type": "control_taken", "timestamp": timestamp.to_string(),
                "control_taken": {"previous_owner_role": "escalation", "new_owner_role": "ai_agent", "metadata": metadata_text}}),
        )
    }

    /// Sends are accepted again (the injected refusals are dropped).
    pub fn clear_send_faults(&self) {
        self.state.send_faults.lock().unwrap().clear();
    }

    /// The next send answers Graph error `code` (HTTP 400, as Meta answers even throttling).
    pub fn fail_next_send(&self, code: i64) {
        self.state.send_faults.lock().unwrap().push(code);
    }

    pub fn lookups(&self) -> u32 {
        self.state.lookups.load(Ordering::SeqCst)
    }

    pub fn downloads(&self) -> u32 {
        self.state.downloads.load(Ordering::SeqCst)
    }

    /// Requests refused for a missing token or User-Agent.
    pub fn refused(&self) -> u32 {
        self.state.refused.load(Ordering::SeqCst)
    }
}

/// `GET /{version}/app`: the app the token belongs to.
async fn app(
    State(state): State<Arc<GraphState>>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse(&state, &version, &headers) {
        return refused;
    }
    axum::Json(json!({"id": APP_ID, "name": APP_NAME, "link": format!("https://www.facebook.com/games/?app_id={APP_ID}")})).into_response()
}

fn unknown_waba(id: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        100,
        &format!(
            "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
        ),
    )
}

/// `GET /{version}/{waba_id}/subscribed_apps` (whatsapp-routing-contract.md §5).
async fn subscribed_apps(
    State(state): State<Arc<GraphState>>,
    Path((version, waba)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse(&state, &version, &headers) {
        return refused;
    }
    let Some(apps) = state.wabas.lock().unwrap().get(&waba).cloned() else {
        return unknown_waba(&waba);
    };
    let data: Vec<serde_json::Value> = apps
        .iter()
        .map(|(id, name)| json!({"whatsapp_business_api_data": {"id": id, "name": name, "link": format!("https://www.facebook.com/games/?app_id={id}")}}))
        .collect();
    axum::Json(json!({"data": data})).into_response()
}

/// `POST /{version}/{waba_id}/subscribed_apps`: subscribes the token's own app (once).
async fn subscribe(
    State(state): State<Arc<GraphState>>,
    Path((version, waba)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse(&state, &version, &headers) {
        return refused;
    }
    let mut wabas = state.wabas.lock().unwrap();
    let Some(apps) = wabas.get_mut(&waba) else {
        return unknown_waba(&waba);
    };
    if !apps.iter().any(|(id, _)| id == APP_ID) {
        apps.push((APP_ID.to_owned(), APP_NAME.to_owned()));
    }
    axum::Json(json!({"success": true})).into_response()
}

/// `GET /{version}/{app id}/subscriptions`: the app's webhook subscriptions, read with the app
/// access token `<app id>|<app secret>` (a user or system-user token is refused).
async fn subscriptions(
    State(state): State<Arc<GraphState>>,
    Path((version, app_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if version != VERSION {
        return graph_error(StatusCode::BAD_REQUEST, 2500, "Unknown path components");
    }
    let secret = state.app_secret.lock().unwrap().clone();
    let expected = format!("{APP_ID}|{secret}");
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = query.get("access_token").map(String::as_str).or(bearer);
    if app_id != APP_ID || secret.is_empty() || token != Some(expected.as_str()) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            190,
            "Invalid OAuth access token - an app access token is required",
        );
    }
    let fields: Vec<serde_json::Value> = state
        .fields
        .lock()
        .unwrap()
        .iter()
        .map(|f| json!({"name": f, "version": VERSION}))
        .collect();
    axum::Json(json!({"data": [{"object": "whatsapp_business_account",
        "callback_url": "https://baton.example.com/webhook", "active": true, "fields": fields}]}))
    .into_response()
}

/// Who owns a routed thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The AI agent, the entry point's primary.
    Primary,
    /// Baton's app.
    Baton,
    /// Released or idle.
    Idle,
}

fn thread_key(phone_number_id: &str, customer: &str) -> (String, String) {
    (
        phone_number_id.to_owned(),
        customer.trim_start_matches('+').to_owned(),
    )
}

fn metadata(phone_number_id: &str) -> serde_json::Value {
    json!({"display_phone_number": "15550783881", "phone_number_id": phone_number_id})
}

fn routing_body(field: &str, value: serde_json::Value) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
        "changes": [{"field": field, "value": value}]}]})
    .to_string()
    .into_bytes()
}

/// Graph's refusal of an act on a thread the caller may not act on (the code vendors report).
fn not_thread_owner(what: &str) -> Response {
    graph_error_with(
        StatusCode::BAD_REQUEST,
        100,
        Some(2_494_191),
        &format!("(#100) {what}"),
    )
}

/// `POST /{version}/{phone number id}/thread_control`: `pass` and `release` by the owner only,
/// `take` by the escalation partner only (whatsapp-routing-contract.md §4).
async fn thread_control(
    State(state): State<Arc<GraphState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse(&state, &version, &headers) {
        return refused;
    }
    let Ok(msg) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter: the body is not JSON",
        );
    };
    let (Some("whatsapp"), Some(to), Some(action)) = (
        msg["messaging_product"].as_str(),
        msg["to"].as_str().or(msg["recipient"].as_str()),
        msg["action"].as_str(),
    ) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter: messaging_product, to (or recipient) and action are required",
        );
    };
    if let Some(status) = state.thread_faults.lock().unwrap().pop() {
        return graph_error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            2,
            "Service temporarily unavailable",
        );
    }
    let mut threads = state.threads.lock().unwrap();
    let key = thread_key(&phone_number_id, to);
    let owner = threads.get(&key).copied().unwrap_or(Owner::Idle);
    let next = match action {
        "pass" | "release" if owner != Owner::Baton => {
            return not_thread_owner("The app does not control this thread");
        }
        "pass" if msg["control_pass"]["target_role"] == "ai_agent" => Owner::Primary,
        "pass" => return not_thread_owner("Pass to the escalation partner: the caller is it"),
        "release" => Owner::Idle,
        "take" if state.escalation.load(Ordering::SeqCst) => Owner::Baton,
        "take" => return not_thread_owner("Only the escalation partner may take a thread"),
        _ => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                "Invalid parameter: action must be pass, take or release",
            );
        }
    };
    threads.insert(key, next);
    state.thread_calls.lock().unwrap().push(msg);
    axum::Json(json!({"messaging_product": "whatsapp"})).into_response()
}

async fn lookup(
    State(state): State<Arc<GraphState>>,
    Path((version, media_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    state.lookups.fetch_add(1, Ordering::SeqCst);
    if let Some(refused) = refuse(&state, &version, &headers) {
        return refused;
    }
    if let Some((display, name)) = state.phones.lock().unwrap().get(&media_id).cloned() {
        return axum::Json(
            json!({"display_phone_number": display, "verified_name": name, "id": media_id}),
        )
        .into_response();
    }
    if query.get("phone_number_id").is_some_and(String::is_empty) {
        return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    }
    let file = {
        let mut files = state.files.lock().unwrap();
        match files.get_mut(&media_id) {
            None => None,
            Some(f) => {
                if let Fault::FailLookups(n) = f.fault
                    && n > 0
                {
                    f.fault = Fault::FailLookups(n - 1);
                    return graph_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        2,
                        "Service temporarily unavailable",
                    );
                }
                Some(f.clone())
            }
        }
    };
    let Some(file) = file else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            &format!(
                "Unsupported get request. Object with ID '{media_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            ),
        );
    };
    let sha = if file.fault == Fault::WrongSha {
        sha256_b64(b"something else")
    } else {
        sha256_b64(&file.bytes)
    };
    let base = state.base.lock().unwrap().clone();
    let url = format!(
        "{base}/whatsapp_business/attachments/?mid={media_id}&ext={}",
        now_ms() + state.url_ttl_ms
    );
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": file.mime,
        "sha256": sha,
        "file_size": match file.fault {
            Fault::ClaimsSize(n) => n.to_string(),
            _ => file.bytes.len().to_string(),
        },
        "id": media_id,
    }))
    .into_response()
}

async fn download(
    State(state): State<Arc<GraphState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    state.downloads.fetch_add(1, Ordering::SeqCst);
    if !bearer_ok(&headers) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Authentication Error");
    }
    if headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ua| ua.trim().is_empty())
    {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::FORBIDDEN,
            [("content-type", "text/html")],
            "<html><body>Sorry, something went wrong.</body></html>",
        )
            .into_response();
    }
    let expired = query
        .get("ext")
        .and_then(|e| e.parse::<u64>().ok())
        .is_none_or(|ext| ext < now_ms());
    let file = query
        .get("mid")
        .and_then(|m| state.files.lock().unwrap().get(m).cloned());
    let (Some(file), false) = (file, expired) else {
        return (StatusCode::NOT_FOUND, "URL signature expired").into_response();
    };
    match file.fault {
        Fault::FailDownloads => return (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        Fault::HangDownload => {
            let stream = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<Bytes, std::io::Error>(Bytes::new())
            });
            return Response::builder()
                .header("content-type", file.mime)
                .body(Body::from_stream(stream))
                .unwrap();
        }
        _ => {}
    }
    let delay = match file.fault {
        Fault::SlowDownload(ms) => Some(Duration::from_millis(ms)),
        _ => None,
    };
    let stall = match file.fault {
        Fault::StallDownload(d) => Some(d),
        _ => None,
    };
    let chunks: Vec<Bytes> = file
        .bytes
        .chunks(64 * 1024)
        .map(Bytes::copy_from_slice)
        .collect();
    let stream =
        futures_util::stream::iter(chunks.into_iter().enumerate()).then(move |(i, c)| async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if let (Some(d), 0) = (stall, i) {
                tokio::time::sleep(d).await;
            }
            Ok::<Bytes, std::io::Error>(c)
        });
    Response::builder()
        .header("content-type", file.mime)
        .header("content-length", file.bytes.len())
        .body(Body::from_stream(stream))
        .unwrap()
}

/// `POST /{version}/{phone number id}/messages` as whatsapp-contract.md §6 describes it: the
/// Bearer token, `messaging_product`, exactly one of `to` and `recipient`, a text with a body of
/// at most 4096 characters or a template with a name and a language code; 200 with the new wamid.
async fn send(
    State(state): State<Arc<GraphState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse(&state, &version, &headers) {
        return refused;
    }
    let invalid = |why: &str| {
        graph_error(
            StatusCode::BAD_REQUEST,
            100,
            &format!("Invalid parameter: {why}"),
        )
    };
    let Ok(msg) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return invalid("the body is not JSON");
    };
    if msg["messaging_product"] != "whatsapp" {
        return invalid("messaging_product must be whatsapp");
    }
    let to = match (msg["to"].as_str(), msg["recipient"].as_str()) {
        (Some(to), None)
            if to
                .trim_start_matches('+')
                .chars()
                .all(|c| c.is_ascii_digit()) =>
        {
            to.trim_start_matches('+').to_owned()
        }
        (None, Some(user)) if user.contains('.') => user.to_owned(),
        _ => return invalid("exactly one of to (a phone number) or recipient (a user id)"),
    };
    if msg["biz_opaque_callback_data"]
        .as_str()
        .is_some_and(|d| d.chars().count() > 512)
    {
        return invalid("biz_opaque_callback_data is longer than 512 characters");
    }
    match msg["type"].as_str() {
        Some("text") => match msg["text"]["body"].as_str() {
            Some(b) if !b.trim().is_empty() && b.chars().count() <= 4096 => {}
            _ => return invalid("text.body must be 1 to 4096 characters"),
        },
        Some("template") => {
            if msg["template"]["name"].as_str().is_none_or(str::is_empty)
                || msg["template"]["language"]["code"]
                    .as_str()
                    .is_none_or(str::is_empty)
            {
                return invalid("template.name and template.language.code are required");
            }
            // Template text parameters: no new-lines, no tabs, at most four spaces in a row.
            let params = msg["template"]["components"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["parameters"].as_array().cloned().unwrap_or_default());
            for p in params {
                let text = p["text"].as_str().unwrap_or_default();
                if text.contains(['\n', '\t']) || text.contains("     ") {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        132_018,
                        "(#132018) There was an issue with the parameters in your template.",
                    );
                }
            }
        }
        _ => return invalid("type must be text or template here"),
    }
    // A routed thread: Baton's send takes it when Baton is the escalation partner, and is
    // refused when it is only a standby partner.
    {
        let mut threads = state.threads.lock().unwrap();
        if let Some(owner) = threads.get_mut(&thread_key(&phone_number_id, &to))
            && *owner != Owner::Baton
        {
            if !state.escalation.load(Ordering::SeqCst) {
                return not_thread_owner(
                    "Cannot send regular messages: the app does not control this thread",
                );
            }
            *owner = Owner::Baton;
        }
    }
    if let Some(code) = state.send_faults.lock().unwrap().pop() {
        let message = match code {
            130429 => "(#130429) Rate limit hit",
            131026 => "(#131026) Message undeliverable",
            _ => "(#100) Injected failure",
        };
        return graph_error(StatusCode::BAD_REQUEST, code, message);
    }
    let mut sent = state.sent.lock().unwrap();
    let wamid = format!("wamid.OUT{}", sent.len() + 1);
    sent.push((phone_number_id, msg, wamid.clone()));
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": wamid}],
    }))
    .into_response()
}

use futures_util::StreamExt as _;
