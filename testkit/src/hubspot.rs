//! A HubSpot server for tests and benchmarks that enforces the contract Baton depends on
//! (../shared/docs/hubspot-contract.md): Bearer auth and scopes, paths, required and known
//! properties, enumerations, unique values, association type ids, `;`-joined attachment ids, the
//! 65,536-character limit, search's filter limits, lag and own rate limit, the rolling 10-second
//! limit, and files' duplicate validation. Faults (429 with and without `Retry-After`, 500, 503,
//! answers that never come, before or after the work is done) are injected per request.

// Validation helpers return the HTTP answer itself as their error: it is what the server sends.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const TOKEN: &str = "pat-na1-test-token";
/// The portal's id, as account details and token info report it.
pub const PORTAL_ID: u64 = 62_515;
/// The date-versioned API this server speaks; the legacy `/crm/v3`, `/crm/v4` and `/files/v3`
/// paths are refused, so a call left on them fails a test.
const CRM: &str = "2026-09";
/// Associations as HubSpot documents them (2026-03).
const ASSOCIATIONS: &str = "2026-03";
const LEGACY_PATHS: &[&str] = &["/crm/v3/", "/crm/v4/", "/files/v3/"];

/// What kind of credential the server's token is: it decides what token introspection says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Credential {
    /// A static-auth app built as a developer-platform project (the recommended set-up).
    #[default]
    StaticApp,
    /// A legacy private app: the one kind `access-token-info` describes.
    LegacyPrivateApp,
    /// A service key: REST calls only, no webhooks.
    ServiceKey,
}

/// HubSpot's object type id of a CRM object (`fromObjectTypeId` in association answers).
fn type_id_of(kind: &str) -> &'static str {
    match kind {
        "contacts" => "0-1",
        "companies" => "0-2",
        "tickets" => "0-5",
        "notes" => "0-46",
        _ => "0-0",
    }
}
/// Every scope the server's private app has until a test removes one (Baton's and two more).
const ALL_SCOPES: &[&str] = &[
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "tickets",
    "files",
    "crm.schemas.contacts.write",
    "crm.schemas.tickets.write",
    "crm.objects.companies.read",
    "oauth",
];

/// What to do to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer 429 (TEN_SECONDLY_ROLLING) with `Retry-After` seconds, or without the header.
    RateLimited(Option<u64>),
    /// Answer 429 with policy DAILY: the account's daily limit is used up.
    DailyLimit,
    /// Answer this status without doing the work.
    Status(u16),
    /// Never answer, without doing the work.
    Hang,
    /// Do the work, then never answer (the response is lost: a timeout or a crash).
    DoThenHang,
    /// Do the work, then answer 502.
    DoThenFail,
    /// Hold the request: answer nothing, and carry it out after this long (HubSpot acting on a
    /// request whose caller gave up). An upload is carried out at once, then never answered.
    DoLater(Duration),
}

struct Injected {
    /// Matches the request with this 1-based number, or else by method and path prefix.
    at: Option<usize>,
    method: Method,
    path_prefix: String,
    fault: Fault,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub id: String,
    pub properties: BTreeMap<String, String>,
    created: Instant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    pub id: String,
    pub folder: String,
    pub name: String,
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub access: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    pub from: (String, String),
    pub to: (String, String),
    pub type_id: u64,
}

struct PropertyDef {
    name: String,
    kind: String,
    unique: bool,
    options: Vec<String>,
    json: Value,
}

struct Portal {
    next_id: u64,
    properties: BTreeMap<String, Vec<PropertyDef>>,
    contacts: Vec<Object>,
    tickets: Vec<Object>,
    notes: Vec<Object>,
    files: Vec<StoredFile>,
    associations: Vec<Association>,
    requests: Vec<(Method, String)>,
    faults: VecDeque<Injected>,
    missing_scopes: Vec<String>,
    /// Tickets are created without the associations they ask for (a fault a test turns on).
    drop_ticket_associations: bool,
    /// `(object, property)` the portal's create form requires (2026-09 enforces it on API
    /// creates).
    required_on_create: Vec<(String, String)>,
    credential: Credential,
    throttled: usize,
    general: VecDeque<Instant>,
    search: VecDeque<Instant>,
}

/// Knobs a test turns.
#[derive(Debug, Clone)]
pub struct Options {
    /// Created contacts stay invisible to search this long.
    pub search_lag: Duration,
    /// Searches per second before a 429 (HubSpot: 5).
    pub search_per_second: usize,
    /// Requests per rolling 10 seconds before a 429 (HubSpot: 100–250).
    pub per_ten_seconds: usize,
    /// Every answer waits this long.
    pub latency: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            search_lag: Duration::from_millis(1500),
            search_per_second: 5,
            per_ten_seconds: 190,
            latency: Duration::ZERO,
        }
    }
}

struct Shared {
    portal: Mutex<Portal>,
    options: Mutex<Options>,
    /// Time spent answering, summed over requests (microseconds).
    busy_micros: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct HubspotServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

fn prop(name: &str, kind: &str, options: &[&str]) -> PropertyDef {
    let json = json!({
        "name": name, "label": name, "type": kind,
        "fieldType": if options.is_empty() { "text" } else { "select" },
        "groupName": "builtin", "hasUniqueValue": false,
        "options": options.iter().enumerate().map(|(i, o)| json!({"label": o, "value": o, "displayOrder": i, "hidden": false})).collect::<Vec<_>>(),
    });
    PropertyDef {
        name: name.into(),
        kind: kind.into(),
        unique: false,
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        json,
    }
}

fn builtin() -> BTreeMap<String, Vec<PropertyDef>> {
    let contacts = [
        "firstname",
        "lastname",
        "email",
        "phone",
        "mobilephone",
        "hs_searchable_calculated_phone_number",
        "hs_searchable_calculated_mobile_number",
    ]
    .iter()
    .map(|n| prop(n, "string", &[]))
    .chain([prop("createdate", "datetime", &[])])
    .collect();
    let tickets = vec![
        prop("subject", "string", &[]),
        prop("content", "string", &[]),
        prop("hs_pipeline", "enumeration", &[]),
        prop("hs_pipeline_stage", "enumeration", &[]),
        prop(
            "hs_ticket_priority",
            "enumeration",
            &["LOW", "MEDIUM", "HIGH", "URGENT"],
        ),
        prop(
            "source_type",
            "enumeration",
            &["EMAIL", "CHAT", "PHONE", "FORM"],
        ),
        prop("hubspot_owner_id", "enumeration", &[]),
        prop("createdate", "datetime", &[]),
    ];
    let notes = vec![
        prop("hs_timestamp", "datetime", &[]),
        prop("hs_note_body", "string", &[]),
        prop("hs_attachment_ids", "enumeration", &[]),
        prop("hubspot_owner_id", "enumeration", &[]),
    ];
    BTreeMap::from([
        ("contacts".to_owned(), contacts),
        ("tickets".to_owned(), tickets),
        ("notes".to_owned(), notes),
    ])
}

fn error(status: u16, category: &str, message: &str) -> Response {
    let body = json!({
        "status": "error",
        "message": message,
        "correlationId": format!("{:08x}-test-{}", status, message.len()),
        "category": category,
    });
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(body),
    )
        .into_response()
}

fn validation(message: &str, code: &str) -> Response {
    let body = json!({
        "status": "error",
        "message": message,
        "correlationId": "0000-validation",
        "category": "VALIDATION_ERROR",
        "errors": [{"message": message, "code": code}],
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

fn ok(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn query(uri: &http::Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `properties` a read asks for.
fn requested_properties(body: &Value) -> Vec<String> {
    body.get("properties")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Fills HubSpot's calculated searchable numbers from `phone` and `mobilephone`.
fn index_phones(props: &mut BTreeMap<String, String>) {
    for (from, to) in [
        ("phone", "hs_searchable_calculated_phone_number"),
        ("mobilephone", "hs_searchable_calculated_mobile_number"),
    ] {
        if let Some(n) = props.get(from).cloned() {
            props.insert(to.into(), searchable(&n));
        }
    }
}

/// HubSpot's calculated searchable number: the national number, without the country code.
fn searchable(number: &str) -> String {
    let t = number.trim();
    if t.starts_with('+') {
        let digits: String = t.chars().filter(char::is_ascii_digit).collect();
        if let Ok(n) = phonenumber::parse(None, format!("+{digits}")) {
            return n.national().to_string();
        }
    }
    t.chars().filter(char::is_ascii_digit).collect()
}

impl Portal {
    fn id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    fn objects(&mut self, kind: &str) -> &mut Vec<Object> {
        match kind {
            "contacts" => &mut self.contacts,
            "tickets" => &mut self.tickets,
            _ => &mut self.notes,
        }
    }

    fn def(&self, kind: &str, name: &str) -> Option<&PropertyDef> {
        self.properties.get(kind)?.iter().find(|p| p.name == name)
    }

    /// Checks properties as HubSpot does: known, valid enumeration values, dates, limits,
    /// unique values (`except` is the object being updated).
    fn check(
        &self,
        kind: &str,
        props: &serde_json::Map<String, Value>,
        except: Option<&str>,
    ) -> Result<BTreeMap<String, String>, Response> {
        let mut out = BTreeMap::new();
        for (name, value) in props {
            let Some(def) = self.def(kind, name) else {
                return Err(validation(
                    &format!("Property \"{name}\" does not exist"),
                    "PROPERTY_DOESNT_EXIST",
                ));
            };
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                other => {
                    return Err(validation(
                        &format!("Invalid input JSON: {name} must be a string, not {other}"),
                        "INVALID_JSON",
                    ));
                }
            };
            if text.encode_utf16().count() > 65_536 {
                return Err(validation(
                    &format!("Property \"{name}\" exceeds the 65536 character limit"),
                    "INVALID_STRING_LENGTH",
                ));
            }
            if !def.options.is_empty() && !def.options.contains(&text) {
                return Err(validation(
                    &format!("{text} was not one of the allowed options for {name}"),
                    "INVALID_OPTION",
                ));
            }
            if def.kind == "datetime"
                && text.parse::<i64>().is_err()
                && time::OffsetDateTime::parse(
                    &text,
                    &time::format_description::well_known::Rfc3339,
                )
                .is_err()
            {
                return Err(validation(
                    &format!("{text} is not a valid datetime for {name}"),
                    "INVALID_DATE",
                ));
            }
            if def.unique {
                let taken = match kind {
                    "contacts" => &self.contacts,
                    "tickets" => &self.tickets,
                    _ => &self.notes,
                }
                .iter()
                .any(|o| Some(o.id.as_str()) != except && o.properties.get(name) == Some(&text));
                if taken {
                    return Err(if kind == "contacts" {
                        error(
                            409,
                            "CONFLICT",
                            &format!("A contact with {name} {text} already exists"),
                        )
                    } else {
                        validation(
                            &format!("{text} already has that value for unique property {name}"),
                            "INVALID_UNIQUE_VALUE",
                        )
                    });
                }
            }
            out.insert(name.clone(), text);
        }
        Ok(out)
    }

    fn find(
        &self,
        kind: &str,
        id: &str,
        id_property: Option<&str>,
    ) -> Result<Option<&Object>, Response> {
        let list = match kind {
            "contacts" => &self.contacts,
            "tickets" => &self.tickets,
            _ => &self.notes,
        };
        Ok(match id_property {
            None => list.iter().find(|o| o.id == id),
            Some(p) => {
                match self.def(kind, p) {
                    Some(d) if d.unique => {}
                    _ => {
                        return Err(validation(
                            &format!("{p} is not a unique property of {kind}"),
                            "INVALID_ID_PROPERTY",
                        ));
                    }
                }
                list.iter()
                    .find(|o| o.properties.get(p).map(String::as_str) == Some(id))
            }
        })
    }

    fn exists(&self, kind: &str, id: &str) -> bool {
        match kind {
            "contacts" | "contact" => self.contacts.iter().any(|o| o.id == id),
            "tickets" | "ticket" => self.tickets.iter().any(|o| o.id == id),
            _ => self.notes.iter().any(|o| o.id == id),
        }
    }

    /// Inline associations: `[{to:{id}, types:[{associationCategory, associationTypeId}]}]`,
    /// each type id valid for the pair and each target existing.
    fn associations(
        &self,
        from: &str,
        list: Option<&Value>,
        allowed: &[(u64, &str)],
    ) -> Result<Vec<(String, String, u64)>, Response> {
        let Some(list) = list else {
            return Ok(Vec::new());
        };
        let Some(list) = list.as_array() else {
            return Err(validation("associations must be an array", "INVALID_JSON"));
        };
        let mut out = Vec::new();
        for a in list {
            let to = a
                .pointer("/to/id")
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                })
                .ok_or_else(|| validation("association without to.id", "INVALID_JSON"))?;
            let types = a
                .get("types")
                .and_then(Value::as_array)
                .ok_or_else(|| validation("association without types", "INVALID_JSON"))?;
            for t in types {
                let category = t
                    .get("associationCategory")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if ![
                    "HUBSPOT_DEFINED",
                    "USER_DEFINED",
                    "INTEGRATOR_DEFINED",
                    "WORK",
                ]
                .contains(&category)
                {
                    return Err(validation(
                        &format!("invalid associationCategory {category:?}"),
                        "INVALID_ENUM",
                    ));
                }
                let id = t
                    .get("associationTypeId")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| {
                        validation("associationTypeId must be a number", "INVALID_JSON")
                    })?;
                let Some((_, to_kind)) = allowed.iter().find(|(tid, _)| *tid == id) else {
                    return Err(validation(
                        &format!("{id} is not a valid association type id from {from}"),
                        "INVALID_ASSOCIATION_TYPE",
                    ));
                };
                if !self.exists(to_kind, &to) {
                    return Err(validation(
                        &format!("{to_kind} {to} does not exist"),
                        "INVALID_OBJECT_ID",
                    ));
                }
                out.push(((*to_kind).to_owned(), to.clone(), id));
            }
        }
        Ok(out)
    }

    fn over_limit(window: &mut VecDeque<Instant>, per: Duration, max: usize) -> bool {
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= per)
        {
            window.pop_front();
        }
        if window.len() >= max {
            return true;
        }
        window.push_back(now);
        false
    }
}

impl HubspotServer {
    pub async fn start(options: Options) -> Self {
        let shared = Arc::new(Shared {
            portal: Mutex::new(Portal {
                next_id: 1000,
                properties: builtin(),
                contacts: Vec::new(),
                tickets: Vec::new(),
                notes: Vec::new(),
                files: Vec::new(),
                associations: Vec::new(),
                requests: Vec::new(),
                faults: VecDeque::new(),
                missing_scopes: Vec::new(),
                drop_ticket_associations: false,
                required_on_create: Vec::new(),
                credential: Credential::default(),
                throttled: 0,
                general: VecDeque::new(),
                search: VecDeque::new(),
            }),
            options: Mutex::new(options),
            busy_micros: std::sync::atomic::AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            // Files far larger than axum's 2 MB default come through.
            .layer(axum::extract::DefaultBodyLimit::max(300 * 1024 * 1024))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn portal(&self) -> std::sync::MutexGuard<'_, Portal> {
        self.shared.portal.lock().expect("portal")
    }

    /// The next request matching `method` and `path_prefix` gets `fault` (faults queue in order).
    pub fn inject(&self, method: Method, path_prefix: &str, fault: Fault) {
        self.portal().faults.push_back(Injected {
            at: None,
            method,
            path_prefix: path_prefix.to_owned(),
            fault,
        });
    }

    /// The `n`-th request the server receives (1-based, counting all so far) gets `fault`.
    pub fn inject_at(&self, n: usize, fault: Fault) {
        self.portal().faults.push_back(Injected {
            at: Some(n),
            method: Method::GET,
            path_prefix: String::new(),
            fault,
        });
    }

    /// How many 429s the server's own limits (not injected faults) answered.
    pub fn throttled(&self) -> usize {
        self.portal().throttled
    }

    /// From now on tickets are created without their associations.
    pub fn drop_ticket_associations(&self) {
        self.portal().drop_ticket_associations = true;
    }

    /// The portal has a property of its own, `property` of `object` (`contacts`, `tickets`), and
    /// requires it on the create form, which 2026-09 enforces on API creates.
    pub fn require_on_create(&self, object: &str, property: &str) {
        let mut p = self.portal();
        p.properties
            .entry(object.to_owned())
            .or_default()
            .push(prop(property, "string", &[]));
        p.required_on_create
            .push((object.to_owned(), property.to_owned()));
    }

    /// Makes the server's token a credential of this kind.
    pub fn set_credential(&self, credential: Credential) {
        self.portal().credential = credential;
    }

    pub fn restore_scopes(&self) {
        self.portal().missing_scopes.clear();
    }

    pub fn remove_scope(&self, scope: &str) {
        self.portal().missing_scopes.push(scope.to_owned());
    }

    /// A contact a person created in HubSpot before Baton existed (visible to search at once).
    pub fn add_contact(&self, properties: &[(&str, &str)]) -> String {
        let mut p = self.portal();
        let id = p.id();
        let mut props: BTreeMap<String, String> = properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        index_phones(&mut props);
        props.insert(
            "createdate".into(),
            format!("2020-01-01T00:00:{:02}Z", p.contacts.len() % 60),
        );
        p.contacts.push(Object {
            id: id.clone(),
            properties: props,
            created: Instant::now() - Duration::from_secs(3600),
        });
        id
    }

    /// The time the server spent answering, summed over every request so far.
    pub fn busy(&self) -> Duration {
        Duration::from_micros(
            self.shared
                .busy_micros
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    pub fn contacts(&self) -> Vec<Object> {
        self.portal().contacts.clone()
    }
    /// A rep changes `property` on ticket `ticket_id` in HubSpot's UI: the ticket changes (as
    /// HubSpot validates it) and the event HubSpot's webhook would carry comes back
    /// (`ticket.propertyChange`, `changeSource` CRM_UI); `None` when HubSpot would refuse it.
    pub fn rep_sets(&self, ticket_id: &str, property: &str, value: &str) -> Option<Value> {
        let mut p = self.portal();
        let props = serde_json::Map::from_iter([(property.to_owned(), json!(value))]);
        let checked = p.check("tickets", &props, Some(ticket_id)).ok()?;
        let event_id = p.id();
        let ticket = p.tickets.iter_mut().find(|t| t.id == ticket_id)?;
        ticket.properties.extend(checked);
        let occurred_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis() as u64;
        Some(json!({
            "eventId": event_id.parse::<u64>().ok()?,
            "subscriptionId": 4_100_001,
            "portalId": 62_515,
            "appId": 1_160_452,
            "occurredAt": occurred_at,
            "subscriptionType": "ticket.propertyChange",
            "attemptNumber": 0,
            "objectId": ticket_id.parse::<u64>().ok()?,
            "changeSource": "CRM_UI",
            "propertyName": property,
            "propertyValue": value,
        }))
    }

    pub fn tickets(&self) -> Vec<Object> {
        self.portal().tickets.clone()
    }
    pub fn notes(&self) -> Vec<Object> {
        self.portal().notes.clone()
    }
    pub fn files(&self) -> Vec<StoredFile> {
        self.portal().files.clone()
    }
    pub fn associations(&self) -> Vec<Association> {
        self.portal().associations.clone()
    }
    /// Every request that reached the server, in order (also the refused ones).
    pub fn requests(&self) -> Vec<(Method, String)> {
        self.portal().requests.clone()
    }
    pub fn property_names(&self, kind: &str) -> Vec<String> {
        self.portal()
            .properties
            .get(kind)
            .map(|l| l.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default()
    }
    /// Ids of the objects of `to_kind` associated from `from`.
    pub fn associated(&self, from_kind: &str, from_id: &str, to_kind: &str) -> Vec<(String, u64)> {
        self.portal()
            .associations
            .iter()
            .filter(|a| a.from == (from_kind.to_owned(), from_id.to_owned()) && a.to.0 == to_kind)
            .map(|a| (a.to.1.clone(), a.type_id))
            .collect()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let started = Instant::now();
    let response = answer(&shared, req).await;
    shared.busy_micros.fetch_add(
        started.elapsed().as_micros() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    response
}

async fn answer(shared: &Arc<Shared>, req: Request) -> Response {
    // Read the whole request before answering, as HubSpot's front end does: a refusal sent while
    // an upload is still streaming would reach the client as a reset connection, not a 401/403.
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return error(400, "VALIDATION_ERROR", &format!("unreadable body: {e}")),
    };
    let req = Request::from_parts(parts, axum::body::Body::from(body));
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path = uri.path().to_owned();
    let latency = shared.options.lock().expect("options").latency;
    let fault = {
        let mut p = shared.portal.lock().expect("portal");
        p.requests.push((method.clone(), path.clone()));
        let n = p.requests.len();
        let idx = p.faults.iter().position(|f| match f.at {
            Some(at) => at == n,
            None => f.method == method && path.starts_with(&f.path_prefix),
        });
        idx.and_then(|i| p.faults.remove(i)).map(|f| f.fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // A legacy private app's token, introspected: the token travels in the body. The header is
    // demanded too, as HubSpot's EU data centre does.
    if path == "/oauth/v2/private-apps/get/access-token-info" && method == Method::POST {
        let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
            .await
            .unwrap_or_default();
        let key = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("tokenKey").and_then(Value::as_str).map(str::to_owned));
        let p = shared.portal.lock().expect("portal");
        return match key {
            None => validation("tokenKey is required", "REQUIRED_FIELD"),
            Some(k) if k != TOKEN || auth != format!("Bearer {TOKEN}") => error(
                401,
                "INVALID_AUTHENTICATION",
                "The token is invalid or expired.",
            ),
            Some(_) if p.credential != Credential::LegacyPrivateApp => validation(
                "The token is not a private app access token.",
                "INVALID_TOKEN_TYPE",
            ),
            Some(_) => {
                let scopes: Vec<&str> = ALL_SCOPES
                    .iter()
                    .copied()
                    .filter(|s| !p.missing_scopes.iter().any(|m| m == s))
                    .collect();
                ok(
                    200,
                    json!({"userId": 5_001, "hubId": PORTAL_ID, "appId": 1_160_452, "scopes": scopes}),
                )
            }
        };
    }
    if auth != format!("Bearer {TOKEN}") {
        return error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        );
    }
    if let Some(legacy) = LEGACY_PATHS.iter().find(|l| path.starts_with(**l)) {
        return error(
            410,
            "GONE",
            &format!("{legacy} is retired here: call the date-versioned path ({CRM})"),
        );
    }
    {
        let p = shared.portal.lock().expect("portal");
        let scope = required_scope(&method, &path);
        if p.missing_scopes.iter().any(|s| s == scope) {
            return error(
                403,
                "MISSING_SCOPES",
                &format!(
                    "This app hasn't been granted all required scopes to make this call. Required: [{scope}]"
                ),
            );
        }
    }
    match &fault {
        Some(Fault::RateLimited(after)) => {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","correlationId":"0000-429","policyName":"TEN_SECONDLY_ROLLING"}))).into_response();
            if let Some(s) = after {
                r.headers_mut().insert("retry-after", HeaderValue::from(*s));
            }
            return r;
        }
        Some(Fault::DailyLimit) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"status":"error","message":"You have reached your daily limit.","errorType":"RATE_LIMIT","correlationId":"0000-daily","policyName":"DAILY"})),
            )
                .into_response();
        }
        Some(Fault::Status(400)) => {
            return validation(
                "Property values were not valid: injected refusal",
                "INVALID_OPTION",
            );
        }
        Some(Fault::Status(s)) => return error(*s, "INTERNAL_ERROR", "injected failure"),
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return error(500, "INTERNAL_ERROR", "hung");
        }
        _ => {}
    }
    let search = path.ends_with("/search");
    {
        let opts = shared.options.lock().expect("options").clone();
        let mut p = shared.portal.lock().expect("portal");
        if search {
            if Portal::over_limit(
                &mut p.search,
                Duration::from_secs(1),
                opts.search_per_second,
            ) {
                p.throttled += 1;
                // Search answers carry no rate-limit headers.
                return error(429, "RATE_LIMIT", "You have reached your secondly limit.");
            }
        } else if Portal::over_limit(
            &mut p.general,
            Duration::from_secs(10),
            opts.per_ten_seconds,
        ) {
            p.throttled += 1;
            return error(
                429,
                "RATE_LIMIT",
                "You have reached your ten_secondly_rolling limit.",
            );
        }
    }
    let response = if path == format!("/account-info/{CRM}/details") && method == Method::GET {
        ok(
            200,
            json!({"portalId": PORTAL_ID, "accountType": "STANDARD", "timeZone": "Europe/Amsterdam",
                "companyCurrency": "EUR", "dataHostingLocation": "eu1", "uiDomain": "app-eu1.hubspot.com"}),
        )
    } else if path == format!("/files/{CRM}/files") && method == Method::POST {
        upload(shared, req).await
    } else {
        let Ok(body) = axum::body::to_bytes(req.into_body(), 4 * 1024 * 1024).await else {
            return validation("body too large", "TOO_LARGE");
        };
        let json: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    return validation(
                        &format!("Invalid input JSON on line 1: {e}"),
                        "INVALID_JSON",
                    );
                }
            }
        };
        if let Some(Fault::DoLater(after)) = &fault {
            let (shared, after) = (shared.clone(), *after);
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let opts = shared.options.lock().expect("options").clone();
                let mut p = shared.portal.lock().expect("portal");
                let _ = route(&mut p, &opts, &method, &uri, &path, json);
            });
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return error(504, "GATEWAY_TIMEOUT", "held");
        }
        let opts = shared.options.lock().expect("options").clone();
        let mut p = shared.portal.lock().expect("portal");
        route(&mut p, &opts, &method, &uri, &path, json)
    };
    match fault {
        Some(Fault::DoThenHang | Fault::DoLater(_)) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            response
        }
        Some(Fault::DoThenFail) => error(502, "BAD_GATEWAY", "injected failure after the work"),
        _ => response,
    }
}

fn route(
    p: &mut Portal,
    opts: &Options,
    method: &Method,
    uri: &http::Uri,
    path: &str,
    body: Value,
) -> Response {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["crm", "properties", CRM, kind]) => {
            let list: Vec<Value> = p
                .properties
                .get(*kind)
                .map(|l| l.iter().map(|d| d.json.clone()).collect())
                .unwrap_or_default();
            ok(200, json!({"results": list}))
        }
        ("POST", ["crm", "properties", CRM, kind]) => {
            for field in ["name", "label", "type", "fieldType", "groupName"] {
                if body.get(field).and_then(Value::as_str).is_none() {
                    return validation(&format!("{field} is required"), "REQUIRED_FIELD");
                }
            }
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            let kind_s = body["type"].as_str().unwrap_or_default().to_owned();
            if ![
                "bool",
                "date",
                "datetime",
                "enumeration",
                "number",
                "phone_number",
                "string",
            ]
            .contains(&kind_s.as_str())
            {
                return validation(&format!("invalid type {kind_s}"), "INVALID_ENUM");
            }
            let list = p.properties.entry((*kind).to_owned()).or_default();
            if list.iter().any(|d| d.name == name) {
                return error(
                    409,
                    "OBJECT_ALREADY_EXISTS",
                    &format!("A property named '{name}' already exists."),
                );
            }
            let unique = body.get("hasUniqueValue").and_then(Value::as_bool) == Some(true);
            if unique && list.iter().filter(|d| d.unique).count() >= 10 {
                return validation(
                    "an object can have at most 10 unique properties",
                    "TOO_MANY_UNIQUE",
                );
            }
            // OptionInput (properties spec): label, value, displayOrder and hidden, all required.
            let raw_options = body.get("options").and_then(Value::as_array);
            for option in raw_options.into_iter().flatten() {
                let has = |field: &str, ok: fn(&Value) -> bool| option.get(field).is_some_and(ok);
                if !(has("label", Value::is_string)
                    && has("value", Value::is_string)
                    && has("displayOrder", Value::is_i64)
                    && has("hidden", Value::is_boolean))
                {
                    return validation(
                        "each option needs label, value, displayOrder and hidden",
                        "REQUIRED_FIELD",
                    );
                }
            }
            let options: Vec<String> = body
                .get("options")
                .and_then(Value::as_array)
                .map(|o| {
                    o.iter()
                        .filter_map(|o| o.get("value").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if kind_s == "enumeration" && options.is_empty() {
                return validation("enumeration properties need options", "REQUIRED_FIELD");
            }
            list.push(PropertyDef {
                name,
                kind: kind_s,
                unique,
                options,
                json: body.clone(),
            });
            ok(201, body)
        }
        ("GET", ["crm", "pipelines", CRM, "tickets"]) => ok(
            200,
            json!({"results": [
            {"id": "0", "label": "Support Pipeline", "displayOrder": 0, "archived": false, "stages": [
                {"id": "4", "label": "Closed", "displayOrder": 3, "metadata": {"ticketState": "CLOSED"}, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"},
                {"id": "1", "label": "New", "displayOrder": 0, "metadata": {"ticketState": "OPEN"}, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"},
                {"id": "2", "label": "Waiting on contact", "displayOrder": 1, "metadata": {"ticketState": "OPEN"}, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"},
                {"id": "3", "label": "Waiting on us", "displayOrder": 2, "metadata": {"ticketState": "OPEN"}, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}]},
            {"id": "9170", "label": "WhatsApp escalations", "displayOrder": 1, "archived": false, "stages": [
                {"id": "9171", "label": "Triage", "displayOrder": 0, "metadata": {"ticketState": "OPEN"}, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"},
                {"id": "9172", "label": "Done", "displayOrder": 1, "metadata": {"ticketState": "CLOSED"}, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}]}]}),
        ),
        ("GET", ["crm", "associations", ASSOCIATIONS, from, to, "labels"]) => {
            let id = match (*from, *to) {
                ("tickets", "contacts") => 16,
                ("notes", "tickets") => 228,
                ("notes", "contacts") => 202,
                ("contacts", "tickets") => 15,
                _ => return error(404, "OBJECT_NOT_FOUND", "unknown association"),
            };
            ok(
                200,
                json!({"results": [{"category": "HUBSPOT_DEFINED", "typeId": id, "label": null,
                    "fromObjectTypeId": type_id_of(from), "toObjectTypeId": type_id_of(to)}]}),
            )
        }
        ("POST", ["crm", "objects", CRM, "contacts", "search"]) => search_contacts(p, opts, &body),
        ("GET", ["crm", "objects", CRM, kind, id])
            if ["contacts", "tickets", "notes"].contains(kind) =>
        {
            let id_property = query(uri, "idProperty");
            match p.find(kind, &percent_decode(id), id_property.as_deref()) {
                Err(r) => r,
                Ok(None) => error(404, "OBJECT_NOT_FOUND", "resource not found"),
                Ok(Some(o)) => ok(
                    200,
                    json!({"id": o.id, "properties": o.properties, "archived": false}),
                ),
            }
        }
        ("PATCH", ["crm", "objects", CRM, kind, id]) if ["contacts", "tickets"].contains(kind) => {
            if !p.exists(kind, id) {
                return error(404, "OBJECT_NOT_FOUND", "resource not found");
            }
            let Some(props) = body.get("properties").and_then(Value::as_object) else {
                return validation("properties is required", "REQUIRED_FIELD");
            };
            let checked = match p.check(kind, props, Some(id)) {
                Ok(c) => c,
                Err(r) => return r,
            };
            let o = p
                .objects(kind)
                .iter_mut()
                .find(|o| o.id == *id)
                .expect("exists");
            o.properties.extend(checked);
            if *kind == "contacts" {
                index_phones(&mut o.properties);
            }
            ok(200, json!({"id": o.id, "properties": o.properties}))
        }
        ("POST", ["crm", "objects", CRM, kind])
            if ["contacts", "tickets", "notes"].contains(kind) =>
        {
            create(p, kind, &body)
        }
        ("DELETE", ["crm", "objects", CRM, kind, id])
            if ["contacts", "tickets", "notes"].contains(kind) =>
        {
            // Archived: gone from reads, as in HubSpot (where it sits in the recycle bin).
            let list = p.objects(kind);
            match list.iter().position(|o| o.id == *id) {
                Some(i) => {
                    list.remove(i);
                    (StatusCode::NO_CONTENT, "").into_response()
                }
                None => error(404, "OBJECT_NOT_FOUND", "resource not found"),
            }
        }
        ("POST", ["crm", "objects", CRM, "notes", "batch", "read"]) => {
            let wanted = requested_properties(&body);
            let Some(inputs) = body.get("inputs").and_then(Value::as_array) else {
                return validation("inputs is required", "REQUIRED_FIELD");
            };
            if inputs.len() > 100 {
                return validation("at most 100 inputs", "TOO_MANY");
            }
            // 2026-09 answers 200 with the ids not found under `errors` (v3 answered 207).
            let mut results = Vec::new();
            let mut errors = Vec::new();
            for id in inputs
                .iter()
                .filter_map(|i| i.get("id").and_then(Value::as_str))
            {
                match p.notes.iter().find(|n| n.id == id) {
                    Some(n) => {
                        let props: BTreeMap<&String, &String> = n
                            .properties
                            .iter()
                            .filter(|(k, _)| wanted.contains(k))
                            .collect();
                        results.push(json!({"id": n.id, "properties": props}));
                    }
                    None => errors.push(json!({"status": "error", "category": "OBJECT_NOT_FOUND",
                        "message": format!("Could not get some notes objects, they may be deleted or not exist. Check that ids are valid: {id}")})),
                }
            }
            ok(
                200,
                json!({"status": "COMPLETE", "results": results, "numErrors": errors.len(),
                    "errors": errors, "startedAt": "2026-12-05T00:00:00Z", "completedAt": "2026-12-05T00:00:00Z"}),
            )
        }
        (
            "GET",
            [
                "crm",
                "objects",
                ASSOCIATIONS,
                from_kind,
                id,
                "associations",
                to_kind,
            ],
        ) => {
            let from = (
                from_kind.trim_end_matches('s').to_owned() + "s",
                (*id).to_owned(),
            );
            let results: Vec<Value> = p.associations.iter().filter(|a| a.from == from && a.to.0 == *to_kind).map(|a| json!({"toObjectId": a.to.1, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": a.type_id, "label": null, "fromObjectTypeId": type_id_of(&a.from.0), "toObjectTypeId": type_id_of(&a.to.0)}]})).collect();
            ok(200, json!({"results": results}))
        }
        _ => error(
            404,
            "OBJECT_NOT_FOUND",
            &format!("No route for {method} {path}"),
        ),
    }
}

fn create(p: &mut Portal, kind: &str, body: &Value) -> Response {
    let Some(props) = body.get("properties").and_then(Value::as_object) else {
        return validation("properties is required", "REQUIRED_FIELD");
    };
    if body.get("associations").is_none() {
        return validation(
            "associations is required (send [] for none)",
            "REQUIRED_FIELD",
        );
    }
    let mut checked = match p.check(kind, props, None) {
        Ok(c) => c,
        Err(r) => return r,
    };
    // 2026-09 applies the create form's required fields to API creates.
    let missing: Vec<&str> = p
        .required_on_create
        .iter()
        .filter(|(k, name)| k == kind && checked.get(name).is_none_or(String::is_empty))
        .map(|(_, name)| name.as_str())
        .collect();
    if !missing.is_empty() {
        let errors: Vec<Value> = missing
            .iter()
            .map(|name| {
                json!({"message": format!("Property \"{name}\" is required on create"),
                "code": "REQUIRED_FIELD", "context": {"propertyName": [name]}})
            })
            .collect();
        let body = json!({"status": "error", "category": "VALIDATION_ERROR",
            "message": "Property values were not valid: the portal's validation rules require properties",
            "correlationId": "0000-required", "errors": errors});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let allowed: &[(u64, &str)] = match kind {
        "tickets" => {
            for required in ["subject", "hs_pipeline_stage"] {
                if !checked.contains_key(required) {
                    return validation(
                        &format!("Property \"{required}\" is required"),
                        "REQUIRED_PROPERTY",
                    );
                }
            }
            let pipeline = checked
                .get("hs_pipeline")
                .cloned()
                .unwrap_or_else(|| "0".into());
            let valid = match pipeline.as_str() {
                "0" => ["1", "2", "3", "4"].contains(&checked["hs_pipeline_stage"].as_str()),
                "9170" => ["9171", "9172"].contains(&checked["hs_pipeline_stage"].as_str()),
                _ => false,
            };
            if !valid {
                return validation(
                    &format!(
                        "{} is not a valid pipeline stage of pipeline {pipeline}",
                        checked["hs_pipeline_stage"]
                    ),
                    "INVALID_OPTION",
                );
            }
            &[(16, "contacts"), (26, "companies")]
        }
        "notes" => {
            if !checked.contains_key("hs_timestamp") {
                return validation("Property \"hs_timestamp\" is required", "REQUIRED_PROPERTY");
            }
            if let Some(Value::Array(_)) = props.get("hs_attachment_ids") {
                return validation(
                    "Invalid input JSON: hs_attachment_ids must be a string",
                    "INVALID_JSON",
                );
            }
            if let Some(ids) = checked.get("hs_attachment_ids") {
                for id in ids.split(';') {
                    if !p.files.iter().any(|f| f.id == id) {
                        return validation(
                            &format!("{id} is not a file id (attachment ids are ;-joined)"),
                            "INVALID_ATTACHMENT",
                        );
                    }
                }
            }
            &[(228, "tickets"), (202, "contacts")]
        }
        _ => &[(15, "tickets"), (279, "companies")],
    };
    let mut assoc = match p.associations(kind, body.get("associations"), allowed) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if kind == "tickets" && p.drop_ticket_associations {
        assoc.clear();
    }
    let id = p.id();
    checked.insert(
        "createdate".into(),
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    );
    if kind == "contacts" {
        index_phones(&mut checked);
    }
    for (to_kind, to_id, type_id) in assoc {
        p.associations.push(Association {
            from: (kind.to_owned(), id.clone()),
            to: (to_kind.clone(), to_id.clone()),
            type_id,
        });
        // HubSpot keeps both directions.
        p.associations.push(Association {
            from: (to_kind, to_id),
            to: (kind.to_owned(), id.clone()),
            type_id,
        });
    }
    let o = Object {
        id: id.clone(),
        properties: checked,
        created: Instant::now(),
    };
    p.objects(kind).push(o.clone());
    ok(
        201,
        json!({"id": id, "properties": o.properties, "archived": false}),
    )
}

fn search_contacts(p: &mut Portal, opts: &Options, body: &Value) -> Response {
    const OPERATORS: &[&str] = &[
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    ];
    // A misspelt key (`filterGroup`) is ignored, as HubSpot does: the search is unfiltered.
    let groups = body
        .get("filterGroups")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if groups.len() > 5 {
        return validation("at most 5 filterGroups", "TOO_MANY_FILTER_GROUPS");
    }
    let total: usize = groups
        .iter()
        .map(|g| {
            g.get("filters")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        })
        .sum();
    if total > 18
        || groups.iter().any(|g| {
            g.get("filters")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
                > 6
        })
    {
        return validation("too many filters", "TOO_MANY_FILTERS");
    }
    if body.to_string().len() > 3000 {
        return validation("query too long", "QUERY_TOO_LONG");
    }
    let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(10);
    if limit > 200 {
        return validation("limit must be at most 200", "INVALID_LIMIT");
    }
    let mut filters = Vec::new();
    for g in &groups {
        let mut all = Vec::new();
        for f in g
            .get("filters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let name = f
                .get("propertyName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let op = f
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if !OPERATORS.contains(&op.as_str()) {
                return validation(&format!("invalid operator {op}"), "INVALID_OPERATOR");
            }
            if p.def("contacts", &name).is_none() {
                return validation(
                    &format!("Property \"{name}\" does not exist"),
                    "PROPERTY_DOESNT_EXIST",
                );
            }
            let value = f
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase();
            all.push((name, op, value));
        }
        filters.push(all);
    }
    let wanted = requested_properties(body);
    let visible = |o: &&Object| o.created.elapsed() >= opts.search_lag;
    let hits: Vec<Value> = p
        .contacts
        .iter()
        .filter(visible)
        .filter(|o| {
            filters.is_empty()
                || filters.iter().any(|group| {
                    group.iter().all(|(name, op, value)| {
                        let v = o.properties.get(name).map(|s| s.to_lowercase());
                        match op.as_str() {
                            "EQ" => v.as_deref() == Some(value.as_str()),
                            "NEQ" => v.as_deref() != Some(value.as_str()),
                            "HAS_PROPERTY" => v.is_some(),
                            "NOT_HAS_PROPERTY" => v.is_none(),
                            _ => false,
                        }
                    })
                })
        })
        .take(limit as usize)
        .map(|o| {
            let props: BTreeMap<&String, &String> = o
                .properties
                .iter()
                .filter(|(k, _)| wanted.contains(k) || *k == "createdate")
                .collect();
            json!({"id": o.id, "properties": props, "archived": false})
        })
        .collect();
    ok(200, json!({"total": hits.len(), "results": hits}))
}

async fn upload(shared: &Arc<Shared>, req: Request) -> Response {
    let mut form = match Multipart::from_request(req, &()).await {
        Ok(f) => f,
        Err(e) => {
            return validation(
                &format!("expected multipart/form-data: {e}"),
                "INVALID_MULTIPART",
            );
        }
    };
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut file: Option<(Vec<u8>, String, Option<String>)> = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_owned();
                if name == "file" {
                    let ct = field
                        .content_type()
                        .unwrap_or("application/octet-stream")
                        .to_owned();
                    let fname = field.file_name().map(str::to_owned);
                    match field.bytes().await {
                        Ok(b) => file = Some((b.to_vec(), ct, fname)),
                        Err(e) => {
                            return validation(
                                &format!("file part unreadable: {e}"),
                                "INVALID_MULTIPART",
                            );
                        }
                    }
                } else {
                    fields.insert(name, field.text().await.unwrap_or_default());
                }
            }
            Ok(None) => break,
            Err(e) => {
                return validation(&format!("multipart unreadable: {e}"), "INVALID_MULTIPART");
            }
        }
    }
    let Some((bytes, content_type, part_name)) = file else {
        return validation("file is required", "REQUIRED_FIELD");
    };
    let options: Value = match fields.get("options").map(|o| serde_json::from_str(o)) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return validation("options must be a JSON string", "INVALID_JSON"),
        None => return validation("options is required (access)", "REQUIRED_FIELD"),
    };
    let access = options.get("access").and_then(Value::as_str).unwrap_or("");
    if ![
        "PUBLIC_INDEXABLE",
        "PUBLIC_NOT_INDEXABLE",
        "HIDDEN_INDEXABLE",
        "HIDDEN_NOT_INDEXABLE",
        "HIDDEN_PRIVATE",
        "PRIVATE",
    ]
    .contains(&access)
    {
        return validation("options.access is required", "REQUIRED_FIELD");
    }
    let folder = match (fields.get("folderPath"), fields.get("folderId")) {
        (Some(f), None) => f.clone(),
        (None, Some(id)) => format!("#{id}"),
        _ => return validation("exactly one of folderPath and folderId", "INVALID_FOLDER"),
    };
    let name = fields
        .get("fileName")
        .cloned()
        .or(part_name)
        .unwrap_or_else(|| "file".into());
    let mut p = shared.portal.lock().expect("portal");
    let strategy = options
        .get("duplicateValidationStrategy")
        .and_then(Value::as_str)
        .unwrap_or("NONE");
    let scope = options
        .get("duplicateValidationScope")
        .and_then(Value::as_str)
        .unwrap_or("ENTIRE_PORTAL");
    if strategy != "NONE" {
        let dup = p
            .files
            .iter()
            .find(|f| f.bytes == bytes && (scope != "EXACT_FOLDER" || f.folder == folder))
            .cloned();
        if let Some(d) = dup {
            if strategy == "REJECT" {
                return validation("duplicate file", "DUPLICATE_FILE");
            }
            return ok(
                200,
                json!({"id": d.id, "name": d.name, "access": d.access, "size": d.bytes.len()}),
            );
        }
    }
    let id = p.id();
    let stored = StoredFile {
        id: id.clone(),
        folder,
        name,
        bytes,
        content_type,
        access: access.to_owned(),
    };
    let size = stored.bytes.len();
    let name = stored.name.clone();
    p.files.push(stored);
    ok(
        201,
        json!({"id": id, "name": name, "access": access, "size": size, "type": "OTHER"}),
    )
}

/// The scope HubSpot's specs (`security`) require for a request, as this server enforces it: the
/// first row whose method class and path prefix match. Kept apart from Baton's own table, which
/// only names the scope in its error messages, so a wrong row there cannot hide here.
fn required_scope(method: &Method, path: &str) -> &'static str {
    // (reads only?, path prefix, scope); a `None` method class matches reads and writes.
    const TABLE: &[(Option<bool>, &str, &str)] = &[
        (Some(true), "/crm/properties/2026-09/tickets", "tickets"),
        (
            Some(false),
            "/crm/properties/2026-09/tickets",
            "crm.schemas.tickets.write",
        ),
        (
            Some(true),
            "/crm/properties/2026-09/contacts",
            "crm.objects.contacts.read",
        ),
        (
            Some(false),
            "/crm/properties/2026-09/contacts",
            "crm.schemas.contacts.write",
        ),
        (
            None,
            "/crm/objects/2026-09/contacts/search",
            "crm.objects.contacts.read",
        ),
        (
            Some(true),
            "/crm/objects/2026-09/contacts",
            "crm.objects.contacts.read",
        ),
        (
            Some(false),
            "/crm/objects/2026-09/contacts",
            "crm.objects.contacts.write",
        ),
        (None, "/crm/objects/2026-09/tickets", "tickets"),
        (None, "/crm/pipelines/2026-09/tickets", "tickets"),
        (None, "/crm/objects/2026-03/tickets", "tickets"),
        // Creating a note is authorised by the contacts write scope (notes spec).
        (
            None,
            "/crm/objects/2026-09/notes",
            "crm.objects.contacts.write",
        ),
        (None, "/files/", "files"),
        (
            None,
            "/crm/associations/2026-03",
            "crm.objects.contacts.read",
        ),
        (None, "/account-info/", "oauth"),
    ];
    let read = method == Method::GET;
    TABLE
        .iter()
        .find(|(reads, prefix, _)| reads.is_none_or(|r| r == read) && path.starts_with(prefix))
        .map_or("tickets", |(_, _, scope)| scope)
}
