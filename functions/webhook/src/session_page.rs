//! The session page a rep opens from the HubSpot note (`GET /sessions/{id}?t=<token>`): the whole
//! conversation in order (customer, AI agent, system) with times, the agent's reasoning and tool
//! calls folded, the customer's files inline through short-lived URLs minted per view, the
//! insights, the reply-window deadline and the HubSpot status trail.
//!
//! Server-rendered HTML with inline CSS and no script at all; every piece of text is escaped, and
//! the Content-Security-Policy allows nothing but the page's own styles and the media URLs it
//! minted. A missing, forged, moved or expired token gets the same plain 403, whatever the id.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use baton_shared::agent::AgentEvent;
use baton_shared::domain::{
    AgentEventKind, AgentEventRecord, EventTrail, HandoffRecord, HubspotTrail, MediaRecord,
    MediaState, Step, StepState, TicketEvent, TicketEventKind, TimelineEntry,
};
use baton_shared::html::{escape, push_escaped};
use baton_shared::media_keys::url_component;
use baton_shared::objects::{ObjectError, ObjectStore, ObjectStream};
use baton_shared::store::{HandoffStore, StoreError, TrailStore};
use baton_shared::transcript::{Line, Transcript, utc};

use baton_shared::session::SessionLinks;

/// How long the media URLs minted for one view stay valid unless configured otherwise.
pub const DEFAULT_MEDIA_URL_SECS: u64 = 900;

/// The page stops adding timeline entries past this size and points at the full transcript
/// (Lambda answers at most 6 MB).
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Timeline entries read per page.
const PAGE_SIZE: usize = 500;

/// The route's prefix.
pub const SESSIONS_PATH: &str = "/sessions/";

/// What a request for a session page (or one of its files) gets.
pub enum Answer {
    /// The page, and the Content-Security-Policy it needs (its media URLs' origins).
    Page { html: String, csp: String },
    /// A file served through the page's own route, for stores without presigned URLs.
    File {
        stream: ObjectStream,
        content_type: String,
    },
    /// A bad, expired or missing token (or a malformed id): nothing else is said.
    Forbidden,
    /// The token is good but the session is gone (removed under the retention policy).
    NotFound,
    /// The store or the bucket could not be read; try again.
    Unavailable(String),
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Page { html, .. } => write!(f, "Page({} bytes)", html.len()),
            Self::File { stream, .. } => write!(f, "File({} bytes)", stream.len),
            Self::Forbidden => f.write_str("Forbidden"),
            Self::NotFound => f.write_str("NotFound"),
            Self::Unavailable(e) => write!(f, "Unavailable({e})"),
        }
    }
}

impl From<StoreError> for Answer {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<ObjectError> for Answer {
    fn from(e: ObjectError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// Renders session pages from the store and the media bucket.
#[derive(Clone)]
pub struct SessionPages {
    handoffs: Arc<dyn HandoffStore>,
    trails: Arc<dyn TrailStore>,
    objects: Arc<dyn ObjectStore>,
    links: SessionLinks,
    media_url_ttl: Duration,
}

fn now_secs() -> i64 {
    baton_shared::clock::now_ms() / 1000
}

/// A session id as Baton makes them (`ho_` and hex); anything else is refused before any lookup.
fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id
            .strip_prefix("ho_")
            .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The value of `name` in a query string, percent-decoded.
fn query_value(query: &str, name: &str) -> Option<String> {
    baton_shared::whatsapp::handshake::form_pairs(query).find_map(|(k, v)| (k == name).then_some(v))
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> Option<&str> {
    let rest = url.find("://").map(|i| i + 3)?;
    let end = url[rest..].find('/').map_or(url.len(), |i| rest + i);
    Some(&url[..end])
}

impl SessionPages {
    pub fn new(
        handoffs: Arc<dyn HandoffStore>,
        trails: Arc<dyn TrailStore>,
        objects: Arc<dyn ObjectStore>,
        links: SessionLinks,
    ) -> Self {
        Self {
            handoffs,
            trails,
            objects,
            links,
            media_url_ttl: Duration::from_secs(DEFAULT_MEDIA_URL_SECS),
        }
    }

    /// How long each view's media URLs stay valid.
    pub fn with_media_url_ttl(mut self, ttl: Duration) -> Self {
        self.media_url_ttl = ttl;
        self
    }

    /// Answers `GET /sessions/{rest}?{query}`: `rest` is the session id, or `{id}/file` with
    /// `m=<wamid>` (a customer's file) or `f=transcript` in the query.
    pub async fn answer(&self, rest: &str, query: &str) -> Answer {
        let (id, file) = match rest.split_once('/') {
            Some((id, "file")) => (id, true),
            Some(_) => return Answer::Forbidden,
            None => (rest, false),
        };
        let Some(token) = query_value(query, "t") else {
            return Answer::Forbidden;
        };
        if !valid_id(id) || !self.links.verify(id, &token, now_secs()) {
            return Answer::Forbidden;
        }
        let handoff = match self.handoffs.handoff(id).await {
            Ok(Some(h)) => h,
            Ok(None) => return Answer::NotFound,
            Err(e) => return e.into(),
        };
        if file {
            return self.file(&handoff, query).await;
        }
        self.render(&handoff, &token).await.unwrap_or_else(|e| e)
    }

    /// A file of this session, for stores that cannot presign. The query names the file, never
    /// a key: `f=transcript`, or `m=<wamid>` looked up in this session's conversation only.
    async fn file(&self, h: &HandoffRecord, query: &str) -> Answer {
        let (key, content_type) = match (query_value(query, "m"), query_value(query, "f")) {
            (Some(wamid), None) => match self.media_record(h, &wamid).await {
                Ok(Some(MediaRecord {
                    state: MediaState::Copied,
                    key: Some(key),
                    content_type,
                    ..
                })) => (key, content_type),
                Ok(_) => return Answer::NotFound,
                Err(e) => return e.into(),
            },
            (None, Some(f)) if f == "transcript" => (
                h.transcript.key.clone(),
                Some("text/plain; charset=utf-8".to_owned()),
            ),
            _ => return Answer::Forbidden,
        };
        match self.objects.open(&key).await {
            Ok(Some(stream)) => Answer::File {
                content_type: stream
                    .content_type
                    .clone()
                    .or(content_type)
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
                stream,
            },
            Ok(None) => Answer::NotFound,
            Err(e) => e.into(),
        }
    }

    /// A URL for one of the session's objects: presigned by the bucket, else the page's own
    /// file route (`wamid` names a customer's file; `None` is the transcript).
    async fn url(
        &self,
        h: &HandoffRecord,
        token: &str,
        key: &str,
        wamid: Option<&str>,
        inline: bool,
    ) -> Result<String, ObjectError> {
        if let Some(url) = self
            .objects
            .presign_get(key, self.media_url_ttl, inline)
            .await?
        {
            return Ok(url);
        }
        let which = match wamid {
            Some(w) => format!("m={}", url_component(w)),
            None => "f=transcript".to_owned(),
        };
        Ok(format!(
            "{SESSIONS_PATH}{}/file?t={}&{which}",
            h.id,
            url_component(token)
        ))
    }

    /// A customer file's record: the handoff's own, or (a file sent after the handoff) the
    /// copy the handoff stage made, if any.
    async fn media_record(
        &self,
        h: &HandoffRecord,
        wamid: &str,
    ) -> Result<Option<MediaRecord>, StoreError> {
        if let Some(m) = h.media.iter().find(|m| m.wamid == wamid) {
            return Ok(Some(m.clone()));
        }
        self.handoffs.media(&h.conversation, wamid).await
    }

    async fn render(&self, h: &HandoffRecord, token: &str) -> Result<Answer, Answer> {
        let now = now_secs();
        let trail = self.trails.trail(&h.id).await?;
        // The window as it stands now: the customer may have written since the handoff.
        let closes_at = self
            .handoffs
            .conversation(&h.conversation)
            .await?
            .and_then(|c| c.reply_window())
            .map(baton_shared::domain::ReplyWindow::closes_at)
            .max(h.reply_window_closes_at);
        let mut origins = BTreeSet::new();
        let mut page = Page::default();
        let name = h.customer.name();
        let number = h.customer.address(&h.conversation);
        page.head(&format!("{name} — WhatsApp session"));
        let _ = write!(
            page.out,
            "<header><h1>WhatsApp session with {}</h1><p class=\"sub\">{} · to {} · handoff \
             <code>{}</code> opened {}</p></header>",
            escape(&name),
            escape(&number),
            escape(&h.customer.display_phone_number),
            escape(&h.id),
            utc(h.created_at_ms / 1000)
        );
        page.insights(h, closes_at, now);
        let transcript_url = self.url(h, token, &h.transcript.key, None, false).await?;
        note_origin(&mut origins, &transcript_url);
        let _ = write!(
            page.out,
            "<p class=\"dl\"><a href=\"{}\" download>Download the full transcript</a> ({} messages, \
             {} agent events at the handoff)</p>",
            escape(&transcript_url),
            h.transcript.messages,
            h.transcript.agent_events
        );
        page.trail(trail.as_ref(), &h.media);
        page.ticket_events(&self.handoffs.ticket_events(&h.id).await?);

        page.out
            .push_str("<section><h2>Conversation</h2><ol class=\"timeline\">");
        let mut transcript = Transcript::new("", &name).keeping_lines();
        let mut after: Option<String> = None;
        let mut shown = 0usize;
        let mut cut = false;
        'pages: loop {
            let timeline = self
                .handoffs
                .timeline_page(&h.conversation, after.as_deref(), PAGE_SIZE)
                .await?;
            for entry in &timeline.entries {
                if page.out.len() > MAX_PAGE_BYTES {
                    cut = true;
                    break 'pages;
                }
                shown += 1;
                match entry {
                    TimelineEntry::Agent(e)
                        if matches!(
                            e.kind,
                            AgentEventKind::Reasoning | AgentEventKind::ToolCall
                        ) =>
                    {
                        page.agent_detail(e);
                    }
                    _ => {
                        transcript.push(entry);
                        for line in transcript.take_lines() {
                            let media = match line.parts().1 {
                                Some(wamid) => {
                                    let record = self.media_record(h, wamid).await?;
                                    let url = match &record {
                                        Some(MediaRecord {
                                            state: MediaState::Copied,
                                            key: Some(key),
                                            kind,
                                            ..
                                        }) => {
                                            let inline = kind != "document";
                                            let url = self
                                                .url(h, token, key, Some(wamid), inline)
                                                .await?;
                                            note_origin(&mut origins, &url);
                                            Some(url)
                                        }
                                        _ => None,
                                    };
                                    Some((record, url))
                                }
                                None => None,
                            };
                            page.line(&line, media);
                        }
                    }
                }
            }
            match timeline.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        page.out.push_str("</ol>");
        if cut {
            page.out.push_str(
                "<p class=\"missing\">The conversation is longer than one page can show; the rest \
                 is in the full transcript above.</p>",
            );
        }
        let _ = write!(
            page.out,
            "</section><footer>{shown} entries. File links on this page work for {} minutes; \
             reload the page for fresh ones. This page is private to holders of the HubSpot \
             ticket's link.</footer></body></html>",
            self.media_url_ttl.as_secs().div_ceil(60)
        );
        let sources = if origins.is_empty() {
            "'self'".to_owned()
        } else {
            format!(
                "'self' {}",
                origins.into_iter().collect::<Vec<_>>().join(" ")
            )
        };
        let csp = format!(
            "default-src 'none'; style-src 'unsafe-inline'; img-src {sources}; media-src \
             {sources}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        Ok(Answer::Page {
            html: page.out,
            csp,
        })
    }
}

fn note_origin(origins: &mut BTreeSet<String>, url: &str) {
    if let Some(o) = origin(url) {
        origins.insert(o.to_owned());
    }
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0 auto;max-width:860px;padding:16px;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;background:#f4f5f7}\
h1{font-size:1.35em;margin:0 0 4px}h2{font-size:1.1em;margin:4px 0 8px}\
.sub{color:#5b6475;margin:0;overflow-wrap:anywhere}\
section{background:#fff;border-radius:10px;padding:12px 16px;margin-top:14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:6px 14px;margin:0}dt{font-weight:600;color:#5b6475}dd{margin:0;overflow-wrap:anywhere;white-space:pre-wrap}\
@media (max-width:560px){dl{grid-template-columns:1fr}dd{margin-bottom:6px}}\
.timeline{list-style:none;padding:0;margin:0}\
.e{margin:10px 0;padding:8px 12px;border-radius:12px;max-width:88%;overflow-wrap:anywhere}\
.customer{background:#e7f0ff;margin-right:auto}.agent{background:#e9f7ef;margin-left:auto}\
.system{background:#f1f1f1;margin:10px auto;text-align:center;font-size:.92em;max-width:96%}\
.aux{background:#fbfbf4;border:1px dashed #d8d6b8;margin-left:auto;font-size:.92em}\
.who{font-weight:600;font-size:.85em}.e time{color:#6b7385;font-size:.8em;margin-left:6px}\
.text{white-space:pre-wrap;margin:4px 0 0}\
.e img{display:block;max-width:100%;height:auto;max-height:420px;border-radius:8px;margin-top:6px}\
.e audio,.e video{display:block;width:100%;max-width:420px;margin-top:6px}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:6px 8px;border-radius:6px;font-size:.85em;margin:4px 0}\
summary{cursor:pointer;font-weight:600}\
.missing{color:#a22}.ok{color:#1a7f37}.warn{color:#9a6700}\
table{border-collapse:collapse;width:100%;font-size:.92em}td,th{text-align:left;padding:4px 6px;border-bottom:1px solid #eee;overflow-wrap:anywhere}\
.dl{margin:12px 0 0}\
footer{color:#6b7385;font-size:.85em;margin:18px 0}";

/// The page being written.
#[derive(Default)]
struct Page {
    out: String,
}

impl Page {
    fn head(&mut self, title: &str) {
        let _ = write!(
            self.out,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
             content=\"width=device-width, initial-scale=1\"><meta name=\"robots\" \
             content=\"noindex, nofollow\"><meta name=\"referrer\" content=\"no-referrer\">\
             <title>{}</title><style>{STYLE}</style></head><body>",
            escape(title)
        );
    }

    fn insights(&mut self, h: &HandoffRecord, closes_at: Option<i64>, now: i64) {
        let i = &h.insights;
        self.out.push_str("<section><h2>Handoff</h2><dl>");
        let mut row = |k: &str, v: String| {
            let _ = write!(self.out, "<dt>{k}</dt><dd>{v}</dd>");
        };
        row(
            "Escalation reason",
            format!(
                "{} <span class=\"sub\">({})</span>",
                escape(&h.reason.text),
                escape(&h.reason.category)
            ),
        );
        row("AI summary", escape(&i.summary));
        row(
            "Sentiment",
            format!("{} ({:+.2})", i.sentiment.label.as_str(), i.sentiment.score),
        );
        row(
            "Language",
            escape(i.language.as_deref().unwrap_or("unknown")),
        );
        row(
            "Reply window",
            match closes_at {
                Some(closes) if closes > now => {
                    let left = (closes - now) / 60;
                    format!(
                        "<span class=\"ok\">open</span> until {} ({} h {} min left): a free-form \
                         reply reaches the customer",
                        utc(closes),
                        left / 60,
                        left % 60
                    )
                }
                Some(closes) => format!(
                    "<span class=\"missing\">closed</span> at {}: only an approved template \
                     message reaches the customer now",
                    utc(closes)
                ),
                None => "the customer has not written".to_owned(),
            },
        );
        row(
            "Trigger",
            format!(
                "{} ({}) at {}",
                h.trigger.kind.as_str(),
                escape(&h.trigger.detail),
                utc(h.trigger.at)
            ),
        );
        self.out.push_str("</dl></section>");
    }

    fn trail(&mut self, trail: Option<&HubspotTrail>, media: &[MediaRecord]) {
        self.out.push_str("<section><h2>HubSpot</h2>");
        let Some(t) = trail else {
            self.out
                .push_str("<p class=\"warn\">Not delivered to HubSpot yet.</p></section>");
            return;
        };
        let class = match t.status.as_str() {
            "done" => "ok",
            "parked" => "missing",
            _ => "warn",
        };
        let _ = write!(
            self.out,
            "<p>Status: <strong class=\"{class}\">{}</strong> after {} run(s), updated {}</p>\
             <table><tr><th>Step</th><th>State</th><th>HubSpot id</th><th>How</th><th>When</th></tr>",
            t.status.as_str(),
            t.runs,
            utc(t.updated_at_ms / 1000)
        );
        let mut step = |name: &str, s: &Step| {
            let state = match s.state {
                StepState::Pending => "pending",
                StepState::Done => "done",
                StepState::Skipped => "skipped",
            };
            let _ = write!(
                self.out,
                "<tr><td>{}</td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(name),
                escape(s.id.as_deref().unwrap_or("")),
                escape(s.how.as_deref().unwrap_or("")),
                s.at_ms.map(|ms| utc(ms / 1000)).unwrap_or_default()
            );
        };
        step("contact", &t.contact);
        step("ticket", &t.ticket);
        for f in &t.files {
            let label = match media.iter().find(|m| m.wamid == f.source) {
                Some(m) => format!("file: {}", m.filename),
                None if f.source == "transcript" => "file: transcript".to_owned(),
                None => "file".to_owned(),
            };
            step(&label, &f.step);
        }
        step("note", &t.note);
        self.out.push_str("</table>");
        if let Some(e) = &t.last_error {
            let _ = write!(
                self.out,
                "<p class=\"missing\">Last error at {} ({}{}{}): {}{}</p>",
                utc(e.at_ms / 1000),
                escape(&e.step),
                e.status.map(|s| format!(", HTTP {s}")).unwrap_or_default(),
                if e.retryable { ", will be retried" } else { "" },
                escape(&e.message),
                e.correlation_id
                    .as_deref()
                    .map(|c| format!(" (correlationId {})", escape(c)))
                    .unwrap_or_default()
            );
        }
        self.out.push_str("</section>");
    }

    /// What happened on the ticket since the handoff: follow-ups, the reps' replies and what
    /// became of them, WhatsApp's failures, the close, and what the agent was told.
    fn ticket_events(&mut self, events: &[(TicketEvent, EventTrail)]) {
        if events.is_empty() {
            return;
        }
        self.out.push_str(
            "<section><h2>On the ticket since the handoff</h2><table><tr><th>When</th>\
             <th>What</th><th>Outcome</th></tr>",
        );
        for (e, t) in events {
            let step_how =
                |name: &str| t.step(name).and_then(|s| s.how.clone()).unwrap_or_default();
            let what = match &e.kind {
                TicketEventKind::FollowUp { message, .. } => {
                    format!("The customer wrote again ({})", message.kind)
                }
                TicketEventKind::Reply { text, .. } => format!("A rep replied: “{text}”"),
                TicketEventKind::ReplyFailed { errors, .. } => format!(
                    "WhatsApp did not deliver a reply (error {})",
                    errors
                        .iter()
                        .map(|e| e.code.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                TicketEventKind::Stage { stage: Some(s), .. } => {
                    format!("The ticket moved to stage {s}")
                }
                TicketEventKind::Stage { stage: None, .. } => "The ticket was deleted".into(),
                TicketEventKind::Ownership { owner } => {
                    format!("The AI agent is told: {} answers", owner.as_str())
                }
                TicketEventKind::ThreadTaken { text, .. } => {
                    format!("Meta's Conversation Routing: {text}")
                }
                TicketEventKind::FileLanded { media } => {
                    format!("The customer's {} followed once copied", media.kind)
                }
            };
            let outcome = match (&e.kind, t.step("send")) {
                (TicketEventKind::Reply { .. }, Some(send)) => match (send.state, &send.id) {
                    (StepState::Done, Some(wamid)) => {
                        format!("sent on WhatsApp ({}), message {wamid}", step_how("send"))
                    }
                    _ => format!("not sent: {}", step_how("send")),
                },
                (TicketEventKind::Stage { .. }, _) if t.step("close").is_some() => {
                    format!("handoff {}", step_how("close").replace('_', " "))
                }
                (TicketEventKind::Ownership { .. }, _) if t.step("agent").is_some() => {
                    step_how("agent")
                }
                _ => t.status.as_str().to_owned(),
            };
            let error = t
                .last_error
                .as_ref()
                .map(|e| format!(" — {}", e.message))
                .unwrap_or_default();
            let _ = write!(
                self.out,
                "<tr><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                utc(e.received_at_ms / 1000),
                escape(&what),
                escape(&outcome),
                escape(&error)
            );
        }
        self.out.push_str("</table></section>");
    }

    fn entry_head(&mut self, class: &str, who: &str, at: i64) {
        let _ = write!(
            self.out,
            "<li class=\"e {class}\"><span class=\"who\">{}</span><time>{}</time>",
            escape(who),
            utc(at)
        );
    }

    fn line(&mut self, line: &Line, media: Option<(Option<MediaRecord>, Option<String>)>) {
        self.entry_head(line.role.as_str(), &line.who, line.at);
        let (before, _, after) = line.parts();
        self.out.push_str("<p class=\"text\">");
        push_escaped(&mut self.out, before);
        self.out.push_str("</p>");
        if let Some((record, url)) = media {
            self.media(record.as_ref(), url.as_deref());
        }
        if !after.trim().is_empty() {
            self.out.push_str("<p class=\"text\">");
            push_escaped(&mut self.out, after);
            self.out.push_str("</p>");
        }
        self.out.push_str("</li>");
    }

    fn media(&mut self, record: Option<&MediaRecord>, url: Option<&str>) {
        let (Some(r), Some(url)) = (record, url) else {
            let why = record
                .and_then(|r| r.error.as_deref())
                .unwrap_or("not copied yet");
            let _ = write!(
                self.out,
                "<p class=\"missing\">File missing: {}</p>",
                escape(why)
            );
            return;
        };
        let url = escape(url);
        let name = escape(&r.filename);
        let size = r
            .bytes
            .map(|b| format!(" ({})", human_bytes(b)))
            .unwrap_or_default();
        match r.kind.as_str() {
            "image" | "sticker" => {
                let _ = write!(
                    self.out,
                    "<a href=\"{url}\"><img src=\"{url}\" alt=\"{name}\" loading=\"lazy\"></a>"
                );
            }
            "audio" => {
                let _ = write!(
                    self.out,
                    "<audio controls preload=\"none\" src=\"{url}\"></audio><a href=\"{url}\" \
                     download>{name}</a>{size}"
                );
            }
            "video" => {
                let _ = write!(
                    self.out,
                    "<video controls preload=\"metadata\" src=\"{url}\"></video><a href=\"{url}\" \
                     download>{name}</a>{size}"
                );
            }
            _ => {
                let _ = write!(
                    self.out,
                    "<p><a class=\"file\" href=\"{url}\" download>{name}</a>{size}</p>"
                );
            }
        }
        if r.sha256_matches == Some(false) {
            self.out
                .push_str("<p class=\"warn\">Its checksum differs from the one WhatsApp sent.</p>");
        }
    }

    fn agent_detail(&mut self, e: &AgentEventRecord) {
        self.entry_head("aux", "AI agent", e.timestamp);
        let Ok(event) = AgentEvent::parse(&e.raw) else {
            let _ = write!(
                self.out,
                "<p class=\"missing\">Agent event {} could not be read.</p></li>",
                escape(&e.event_id)
            );
            return;
        };
        match (e.kind, &event.tool) {
            (AgentEventKind::ToolCall, Some(tool)) => {
                let _ = write!(
                    self.out,
                    "<details><summary>Tool call: {}{}{}</summary>",
                    escape(&tool.name),
                    tool.duration_ms
                        .map(|d| format!(" ({d} ms)"))
                        .unwrap_or_default(),
                    if tool.error.is_some() {
                        " — failed"
                    } else {
                        ""
                    }
                );
                for (label, value) in [("Input", &tool.input), ("Output", &tool.output)] {
                    if let Some(v) = value {
                        let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
                        let _ =
                            write!(self.out, "<div>{label}</div><pre>{}</pre>", escape(&pretty));
                    }
                }
                if let Some(err) = &tool.error {
                    let _ = write!(self.out, "<div>Error</div><pre>{}</pre>", escape(err));
                }
                self.out.push_str("</details>");
            }
            _ => {
                let _ = write!(
                    self.out,
                    "<details><summary>Reasoning{}</summary><pre>{}</pre></details>",
                    if e.failed { " (marked failed)" } else { "" },
                    escape(event.text.as_deref().unwrap_or(""))
                );
            }
        }
        self.out.push_str("</li>");
    }
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1024 * 1024 => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.0} KB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// The plain page every refused request gets: it says nothing about the session.
pub const FORBIDDEN_HTML: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Forbidden</title>\
</head><body><h1>Forbidden</h1><p>This link is not valid, or it has expired. Open the session \
again from the HubSpot ticket.</p></body></html>";

/// The page for a session that is no longer stored.
pub const NOT_FOUND_HTML: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Not found</title>\
</head><body><h1>Not found</h1><p>This session is no longer stored (Baton keeps conversations \
for the retention period its operators set).</p></body></html>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_tokens_and_queries_are_read_strictly() {
        assert!(valid_id("ho_0123abcd"));
        for bad in ["", "ho_", "ho_xyz", "x_12", "ho_12/..", "ho_12%2f"] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert_eq!(query_value("a=1&t=12.ab", "t").as_deref(), Some("12.ab"));
        assert_eq!(
            query_value("t=1&key=media%2Fa%2Fb.jpg", "key").as_deref(),
            Some("media/a/b.jpg")
        );
        assert_eq!(query_value("t", "t").as_deref(), Some(""));
        assert_eq!(query_value("x=1", "t"), None);
        assert_eq!(
            origin("https://b.s3.amazonaws.com/k?x"),
            Some("https://b.s3.amazonaws.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:9000"),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(origin("/sessions/x"), None);
    }
}
