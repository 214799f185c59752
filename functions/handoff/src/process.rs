//! What the handoff function does with each change the store reports: copy a new message's media
//! at once, decide whether the message or agent event calls for a person, and if so open the
//! conversation's handoff episode (once) and write the handoff record with transcript, insights and
//! media.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::bedrock::{BedrockInsights, ModelFailure, ModelInsights};
use crate::detect::{DetectionKind, Detector};
use crate::insights;
use crate::llm::LlmClient;
use crate::media::{CopyQueue, MediaCopier, MediaJob};
use baton_shared::agent::{AgentEvent, HandoffRequest, Origin};
use baton_shared::domain::*;
use baton_shared::objects::{ObjectError, ObjectMeta};
use baton_shared::retry::{Classify, ErrorClass};
use baton_shared::store::{HandoffStore, StoreError};
use baton_shared::transcript::{Transcript, excerpt_of};
use baton_shared::whatsapp::{Content, InboundMessage, Interactive, Media, Reading, read_message};

/// Media types copied to storage.
pub const MEDIA_KINDS: &[&str] = &["image", "audio", "video", "document", "sticker"];

/// Timeline entries read per page while building a transcript.
pub const PAGE_SIZE: usize = 500;

/// The built-in summary's length.
pub const SUMMARY_CHARS: usize = 400;

/// Messages of the customer the insights read (the latest ones).
const INSIGHT_MESSAGES: usize = 200;

#[derive(Debug, Clone)]
pub struct HandoffSettings {
    /// Consecutive agent events marked `failed` that open a handoff; 0 turns the rule off.
    pub failure_threshold: u32,
    /// Extra keywords per language (`BATON_HANDOFF_KEYWORDS`).
    pub keywords: BTreeMap<String, Vec<String>>,
    /// How long a handoff or follow-up waits for a queued copy of the conversation's files
    /// before it goes on without them (they follow on the ticket as they land).
    pub media_wait: Duration,
}

/// [`HandoffSettings::media_wait`]'s default: an image or a voice note copies in a second or
/// two; a long video may not, and the rep should not wait for it.
pub const MEDIA_WAIT: Duration = Duration::from_secs(10);

impl Default for HandoffSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            keywords: BTreeMap::new(),
            media_wait: MEDIA_WAIT,
        }
    }
}

/// A failure worth retrying the change for (the stream delivers it again).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Objects(#[from] ObjectError),
}

/// Whether another attempt could succeed: the store's or the bucket's own class. A change that
/// can never be processed is skipped (and logged) instead of blocking the conversation's later
/// changes.
impl Classify for ProcessError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Store(e) => e.class(),
            Self::Objects(e) => e.class(),
        }
    }
}

/// What processing one change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing for this function (a status, a handoff, an event that asks for nothing).
    Nothing,
    /// The message's file was copied (or its failure recorded); no handoff.
    MediaSaved(MediaState),
    /// The message's file was queued to be copied; no handoff.
    MediaQueued,
    /// A handoff was opened and its record written.
    Opened { handoff_id: String },
    /// A handoff is already open for this conversation; nothing new.
    AlreadyOpen { handoff_id: String },
    /// The message came after the open handoff's transcript: it goes to the ticket (`new` is
    /// false when it had been passed on before).
    FollowUp { handoff_id: String, new: bool },
    /// Meta gave the thread to another partner: a note for the open handoff's ticket (`new` is
    /// false when it had been passed on before).
    ThreadTaken { handoff_id: String, new: bool },
}

/// The handoff function's logic, independent of Lambda.
pub struct Processor {
    store: Arc<dyn HandoffStore>,
    copier: MediaCopier,
    /// Where copies run; `None` copies inline, as each record is handled.
    copies: Option<Arc<dyn CopyQueue>>,
    /// Amazon Bedrock, when a model is configured: summary, reason, sentiment and language.
    bedrock: Option<BedrockInsights>,
    llm: Option<LlmClient>,
    detector: Detector,
    settings: HandoffSettings,
    clock: fn() -> i64,
}

impl Processor {
    pub fn new(
        store: Arc<dyn HandoffStore>,
        copier: MediaCopier,
        llm: Option<LlmClient>,
        settings: HandoffSettings,
    ) -> Self {
        Self {
            store,
            copier,
            copies: None,
            bedrock: None,
            llm,
            detector: Detector::with_keywords(&settings.keywords),
            settings,
            clock: baton_shared::clock::now_ms,
        }
    }

    /// Copies run through `queue`, apart from the records ([`crate::copies`]).
    pub fn with_copy_queue(mut self, queue: Arc<dyn CopyQueue>) -> Self {
        self.copies = Some(queue);
        self
    }

    /// The insights come from `model` on Amazon Bedrock (falling back to the built-in ones).
    pub fn with_bedrock(mut self, model: BedrockInsights) -> Self {
        self.bedrock = Some(model);
        self
    }

    /// A fixed clock, for tests.
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    pub async fn process(&self, change: &Change) -> Result<Outcome, ProcessError> {
        match change {
            Change::Message(m) => self.message(m).await,
            Change::AgentEvent(e) => self.agent_event(e).await,
            Change::Handoff(_) | Change::TicketEvent(_) => Ok(Outcome::Nothing),
        }
    }

    async fn message(&self, m: &MessageRecord) -> Result<Outcome, ProcessError> {
        // What cannot be read as a message still reaches the transcript (and a follow-up note)
        // for what it is; only the phrase detection and the media copy need the message itself.
        let msg: Option<InboundMessage> = match read_message(&m.raw) {
            Reading::Whole(msg) | Reading::Repaired(msg) => Some(msg),
            Reading::Unreadable { reason, .. } => {
                tracing::warn!(message_ref = %baton_shared::observe::message_ref(&m.wamid), error = %reason, "stored message read only in part; it goes to the transcript as unreadable");
                None
            }
        };
        let mut outcome = Outcome::Nothing;
        let mut copy = None;
        if let Some(media) = msg.as_ref().and_then(|msg| msg.content.media())
            && MEDIA_KINDS.contains(&m.kind.as_str())
        {
            let settled = match (
                self.copy_of(&m.conversation, &m.wamid, &m.kind, media)
                    .await?,
                &self.copies,
            ) {
                (FileCopy::Settled(record), _) => FileCopy::Settled(record),
                (FileCopy::Pending(job), Some(queue)) => {
                    let job = MediaJob {
                        order_key: Some(m.order_key()),
                        ..job
                    };
                    queue.enqueue(&job).await?;
                    FileCopy::Pending(job)
                }
                (FileCopy::Pending(job), None) => FileCopy::Settled(self.copy_now(&job).await?),
            };
            outcome = match &settled {
                FileCopy::Settled(record) => Outcome::MediaSaved(record.state),
                FileCopy::Pending(_) => Outcome::MediaQueued,
            };
            copy = Some(settled);
        }
        if let Some(handoff) = self.open_handoff(&m.conversation).await?
            && follows(&handoff, m)
        {
            let window = self
                .store
                .conversation(&m.conversation)
                .await?
                .and_then(|c| c.reply_window())
                .map(ReplyWindow::closes_at);
            let copy = match copy {
                Some(FileCopy::Settled(record)) => Some(record),
                Some(FileCopy::Pending(job)) => self.awaited(vec![(job, 0)]).await?.pop(),
                None => None,
            };
            let pending = pending_of(copy.iter());
            let event = TicketEvent::follow_up(&handoff, m, copy, window, (self.clock)());
            let new = self.store.save_ticket_event(&event).await?;
            tracing::info!(handoff_id = %handoff.id, new, "follow-up passed on to the ticket");
            self.landed_meanwhile(&handoff, pending).await?;
            return Ok(Outcome::FollowUp {
                handoff_id: handoff.id,
                new,
            });
        }
        let Some(text) = msg.as_ref().and_then(customer_words) else {
            return Ok(outcome);
        };
        let Some(found) = self.detector.detect(&text) else {
            return Ok(outcome);
        };
        tracing::info!(message_ref = %baton_shared::observe::message_ref(&m.wamid), language = found.language, "the customer asked for a person");
        tracing::debug!(phrase = %found.phrase, "matched");
        let (kind, detail) = match found.kind {
            DetectionKind::CustomerAsked => (TriggerKind::CustomerAsked, found.phrase.clone()),
            DetectionKind::Keyword => (TriggerKind::Keyword, found.phrase.clone()),
        };
        let trigger = Trigger {
            kind,
            source_id: m.wamid.clone(),
            at: m.timestamp,
            detail,
            language: (found.language != "und").then(|| found.language.to_owned()),
        };
        let reason = match kind {
            TriggerKind::Keyword => Reason {
                category: "keyword".into(),
                text: format!(
                    "The customer's message matched the keyword “{}”: “{}”",
                    found.phrase,
                    excerpt_of(&text, 200)
                ),
            },
            _ => Reason {
                category: "customer_request".into(),
                text: format!(
                    "The customer asked for a person: “{}”",
                    excerpt_of(&text, 200)
                ),
            },
        };
        self.open(&m.conversation, trigger, reason, None).await
    }

    /// The handoff of the conversation's open episode, once its record is written.
    async fn open_handoff(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<HandoffRecord>, ProcessError> {
        match self.store.open_episode(key).await? {
            Some(episode) => Ok(self
                .store
                .handoff(&HandoffRecord::id_for(key, episode))
                .await?),
            None => Ok(None),
        }
    }

    /// A message's file: its stored record when a copy exists or can never be made, else the job
    /// that copies it.
    async fn copy_of(
        &self,
        key: &ConversationKey,
        wamid: &str,
        kind: &str,
        media: &Media,
    ) -> Result<FileCopy, ProcessError> {
        let attempts_before = match self.store.media(key, wamid).await? {
            Some(r) if r.state == MediaState::Copied || !r.retryable => {
                return Ok(FileCopy::Settled(r));
            }
            Some(r) => r.attempts,
            None => 0,
        };
        Ok(FileCopy::Pending(MediaJob {
            conversation: key.clone(),
            wamid: wamid.to_owned(),
            kind: kind.to_owned(),
            media: media.clone(),
            attempts_before,
            attempts: None,
            order_key: None,
        }))
    }

    /// Copies a file inline and stores the outcome.
    async fn copy_now(&self, job: &MediaJob) -> Result<MediaRecord, ProcessError> {
        let record = self.copier.copy(job, (self.clock)()).await;
        self.store.save_media(&record).await?;
        Ok(record)
    }

    /// Runs a queued copy job: the file copied (with the configured attempts) and the outcome
    /// stored; when a handoff or follow-up went on without it, it follows on the ticket.
    pub async fn run_copy(&self, job: &MediaJob) -> Result<MediaRecord, ProcessError> {
        let record = self.copy_now(job).await?;
        if let Some(handoff) = self.open_handoff(&job.conversation).await?
            && self.went_on_without(&handoff, job).await?
        {
            self.file_follows(&handoff, record.clone()).await?;
        }
        Ok(record)
    }

    /// Whether the handoff, or the follow-up of the job's message, was written with the file
    /// still pending.
    async fn went_on_without(
        &self,
        handoff: &HandoffRecord,
        job: &MediaJob,
    ) -> Result<bool, ProcessError> {
        let pending = |m: &MediaRecord| m.wamid == job.wamid && m.state == MediaState::Pending;
        if handoff.media.iter().any(pending) {
            return Ok(true);
        }
        let Some(order_key) = &job.order_key else {
            return Ok(false);
        };
        let follow_up = self
            .store
            .ticket_event(&handoff.id, &TicketEvent::follow_up_id(order_key))
            .await?;
        Ok(matches!(
            follow_up.as_ref().map(|(e, _)| &e.kind),
            Some(TicketEventKind::FollowUp { media: Some(m), .. }) if pending(m)
        ))
    }

    async fn file_follows(
        &self,
        handoff: &HandoffRecord,
        record: MediaRecord,
    ) -> Result<(), ProcessError> {
        let event = TicketEvent::file_landed(handoff, record, (self.clock)());
        if self.store.save_ticket_event(&event).await? {
            tracing::info!(handoff_id = %handoff.id, "a file that was still being copied follows on the ticket");
        }
        Ok(())
    }

    /// Waits, up to the configured bound, for the outcome of each queued copy (a job and the
    /// time it was queued: an outcome older than that is a previous attempt's); a copy still
    /// running by then is returned as pending, with the time its copy was queued.
    async fn awaited(&self, jobs: Vec<(MediaJob, i64)>) -> Result<Vec<MediaRecord>, ProcessError> {
        let until = tokio::time::Instant::now() + self.settings.media_wait;
        let mut outcomes: Vec<Option<MediaRecord>> = vec![None; jobs.len()];
        loop {
            for ((job, since), outcome) in jobs.iter().zip(outcomes.iter_mut()) {
                if outcome.is_none() {
                    *outcome = self
                        .store
                        .media(&job.conversation, &job.wamid)
                        .await?
                        .filter(|r| is_outcome_since(r, *since));
                }
            }
            if outcomes.iter().all(Option::is_some) || tokio::time::Instant::now() >= until {
                break;
            }
            tokio::time::sleep(MEDIA_POLL).await;
        }
        // A pending record keeps, as its time, when its copy was queued.
        Ok(jobs
            .iter()
            .zip(outcomes)
            .map(|((job, since), outcome)| {
                outcome.unwrap_or_else(|| job.record(MediaState::Pending, *since))
            })
            .collect())
    }

    /// After a handoff or follow-up was written with files pending: any that landed while it was
    /// being written follow now (the copy job, finishing first, found nothing to follow).
    async fn landed_meanwhile(
        &self,
        handoff: &HandoffRecord,
        pending: Vec<MediaRecord>,
    ) -> Result<(), ProcessError> {
        for p in pending {
            if let Some(record) = self.store.media(&p.conversation, &p.wamid).await?
                && is_outcome_since(&record, p.updated_at_ms)
            {
                self.file_follows(handoff, record).await?;
            }
        }
        Ok(())
    }

    async fn agent_event(&self, e: &AgentEventRecord) -> Result<Outcome, ProcessError> {
        let event = match AgentEvent::parse(&e.raw) {
            Ok(ev) => ev,
            Err(err) => {
                tracing::warn!(event_id = %e.event_id, error = %err, "stored agent event could not be read; skipped");
                return Ok(Outcome::Nothing);
            }
        };
        if e.kind == AgentEventKind::Handoff
            && let Some(request) = event.handoff
        {
            // Meta's control_passed is a handoff of its own kind; its summary, like the agent's,
            // wins over the built-in one.
            let kind = match event.origin {
                Some(Origin::ControlPassed) => TriggerKind::ControlPassed,
                _ => TriggerKind::AgentRequest,
            };
            tracing::info!(event_id = %e.event_id, category = %request.category, trigger = kind.as_str(), "the AI agent asked for a person");
            let trigger = Trigger {
                kind,
                source_id: e.event_id.clone(),
                at: e.timestamp,
                detail: request.category.clone(),
                language: request.language.clone(),
            };
            let reason = Reason {
                category: request.category.clone(),
                text: request.reason.clone(),
            };
            return self
                .open(&e.conversation, trigger, reason, Some(request))
                .await;
        }
        // Another partner took the thread: the open handoff's ticket says so.
        if e.kind == AgentEventKind::Handover {
            let Some(handoff) = self.open_handoff(&e.conversation).await? else {
                return Ok(Outcome::Nothing);
            };
            let event = TicketEvent::thread_taken(
                &handoff,
                e,
                event.text.unwrap_or_default(),
                (self.clock)(),
            );
            let new = self.store.save_ticket_event(&event).await?;
            tracing::info!(handoff_id = %handoff.id, new, "another partner took the WhatsApp thread");
            return Ok(Outcome::ThreadTaken {
                handoff_id: handoff.id,
                new,
            });
        }
        // Reasoning and Meta's handovers neither fail nor succeed; replies and tool calls do.
        if self.settings.failure_threshold == 0
            || matches!(e.kind, AgentEventKind::Reasoning | AgentEventKind::Handover)
        {
            return Ok(Outcome::Nothing);
        }
        let run = self
            .store
            .agent_outcome(&e.conversation, &e.order_key(), e.failed)
            .await?;
        if !e.failed || run < self.settings.failure_threshold {
            return Ok(Outcome::Nothing);
        }
        tracing::info!(event_id = %e.event_id, run, "the AI agent failed too many times in a row");
        let trigger = Trigger {
            kind: TriggerKind::AgentFailures,
            source_id: e.event_id.clone(),
            at: e.timestamp,
            detail: run.to_string(),
            language: None,
        };
        let reason = Reason {
            category: "agent_failures".into(),
            text: format!("The AI agent could not help {run} times in a row."),
        };
        self.open(&e.conversation, trigger, reason, None).await
    }

    /// Opens the episode (or finds it open) and writes its handoff record once.
    async fn open(
        &self,
        key: &ConversationKey,
        trigger: Trigger,
        reason: Reason,
        request: Option<HandoffRequest>,
    ) -> Result<Outcome, ProcessError> {
        let claim = self.store.claim_handoff(key, &trigger.source_id).await?;
        let handoff_id = HandoffRecord::id_for(key, claim.episode);
        // Another trigger opened this episode; its own change writes the record.
        if !claim.opened && claim.trigger != trigger.source_id {
            tracing::info!(handoff_id = %handoff_id, "a handoff is already open for this conversation");
            return Ok(Outcome::AlreadyOpen { handoff_id });
        }
        // This change opened the episode before (a redelivery): finish what was started.
        if self.store.handoff(&handoff_id).await?.is_some() {
            return Ok(Outcome::AlreadyOpen { handoff_id });
        }
        let record = self
            .build(
                key,
                claim.episode,
                handoff_id.clone(),
                trigger,
                reason,
                request,
            )
            .await?;
        if self.store.save_handoff(&record).await? {
            tracing::info!(handoff_id = %handoff_id, media = record.media.len(), messages = record.transcript.messages, "handoff written");
            self.landed_meanwhile(&record, pending_of(record.media.iter()))
                .await?;
        }
        Ok(Outcome::Opened { handoff_id })
    }

    async fn build(
        &self,
        key: &ConversationKey,
        episode: u32,
        id: String,
        trigger: Trigger,
        reason: Reason,
        request: Option<HandoffRequest>,
    ) -> Result<HandoffRecord, ProcessError> {
        let conversation = self.store.conversation(key).await?;
        let customer = conversation
            .as_ref()
            .map_or_else(Customer::default, |c| Customer {
                wa_id: c.wa_id.clone(),
                user_id: c.user_id.clone(),
                username: c.username.clone(),
                profile_name: c.profile_name.clone(),
                display_phone_number: c.display_phone_number.clone(),
            });
        let name = customer.name();
        let who = customer.address(key);
        let title = format!("WhatsApp conversation with {name} ({who}) — handoff {id}");

        // The timeline, a page at a time.
        let mut transcript = Transcript::new(&title, &name);
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .timeline_page(key, after.as_deref(), PAGE_SIZE)
                .await?;
            for entry in &page.entries {
                transcript.push(entry);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let rendered = transcript.finish();

        // Every file, copied on arrival or now; a file that can't be fetched doesn't block, and
        // one still being copied is waited for only so long.
        let mut copies: HashMap<String, MediaRecord> = HashMap::new();
        let mut media = Vec::with_capacity(rendered.media.len());
        let mut waiting = Vec::new();
        for m in &rendered.media {
            let record = match (
                self.copy_of(key, &m.wamid, &m.kind, &m.media).await?,
                &self.copies,
            ) {
                (FileCopy::Settled(record), _) => record,
                (FileCopy::Pending(mut job), None) => {
                    job.attempts = Some(1);
                    self.copy_now(&job).await?
                }
                (FileCopy::Pending(job), Some(queue)) => {
                    // A failed copy is queued again; a first one is still in its queue.
                    let since = if job.attempts_before > 0 {
                        queue.enqueue(&job).await?;
                        (self.clock)()
                    } else {
                        0
                    };
                    waiting.push((job, since));
                    continue;
                }
            };
            copies.insert(m.wamid.clone(), record.clone());
            media.push(record);
        }
        for record in self.awaited(waiting).await? {
            copies.insert(record.wamid.clone(), record.clone());
            media.push(record);
        }
        let order: HashMap<&str, usize> = rendered
            .media
            .iter()
            .enumerate()
            .map(|(i, m)| (m.wamid.as_str(), i))
            .collect();
        media.sort_by_key(|r| order.get(r.wamid.as_str()).copied());
        let objects = self.copier.objects().clone();
        let text = rendered.text(&copies, &|k| objects.link(k));
        let transcript_key = format!("transcripts/{id}.txt");
        let bytes = Bytes::from(text);
        let size = bytes.len() as u64;
        let meta = ObjectMeta {
            content_type: "text/plain; charset=utf-8".into(),
            filename: Some(format!("transcript-{id}.txt")),
            metadata: vec![("handoff-id".into(), id.clone())],
        };
        objects.put(&transcript_key, bytes.clone(), &meta).await?;

        let insights = self
            .insights(&rendered.customer_texts, &bytes, &trigger, request.as_ref())
            .await;
        // Meta passed the thread: Baton owns it. Routing in the conversation otherwise: the AI
        // agent does, until a rep's reply takes it.
        let thread = match trigger.kind {
            TriggerKind::ControlPassed => Some(ThreadOwner::Baton),
            _ if rendered.routed => Some(ThreadOwner::Primary),
            _ => None,
        };
        Ok(HandoffRecord {
            thread,
            id,
            conversation: key.clone(),
            episode,
            trigger,
            reason,
            customer,
            insights,
            transcript: TranscriptRef {
                key: transcript_key,
                bytes: size,
                messages: rendered.messages,
                agent_events: rendered.agent_events,
                last_order_key: rendered.last_order_key.clone(),
            },
            media,
            reply_window_closes_at: conversation
                .and_then(|c| c.reply_window())
                .map(ReplyWindow::closes_at),
            created_at_ms: (self.clock)(),
        })
    }

    async fn insights(
        &self,
        texts: &[String],
        transcript: &[u8],
        trigger: &Trigger,
        request: Option<&HandoffRequest>,
    ) -> Insights {
        let recent = &texts[texts.len().saturating_sub(INSIGHT_MESSAGES)..];
        let joined: String = recent.join("\n");
        let hint = trigger.language.as_deref();
        let agent_summary = request
            .and_then(|r| r.summary.clone())
            .filter(|s| !s.trim().is_empty());
        // The agent's (or Meta's) own summary wins; otherwise the model, when there is one.
        let model: Option<(String, Result<ModelInsights, ModelFailure>)> = match (
            &agent_summary,
            &self.bedrock,
        ) {
            (None, Some(bedrock)) => {
                let text = String::from_utf8_lossy(transcript);
                let answer = bedrock.insights(&text, Some(trigger.detail.as_str())).await;
                if let Err(why) = &answer {
                    tracing::warn!(error = %why, "Amazon Bedrock's insights were not used; the built-in ones are");
                } else if let Ok(m) = &answer {
                    tracing::info!(
                        input_tokens = m.input_tokens,
                        output_tokens = m.output_tokens,
                        "Amazon Bedrock wrote the insights"
                    );
                }
                Some((bedrock.label(), answer))
            }
            _ => None,
        };
        let from_model = model.as_ref().and_then(|(_, m)| m.as_ref().ok());
        let (language, language_source) = match request
            .and_then(|r| r.language.clone())
            .filter(|l| !l.trim().is_empty())
        {
            Some(l) => (Some(l), Source::Agent),
            None => match from_model {
                Some(m) => (Some(m.language.clone()), Source::Bedrock),
                None => (insights::language(&joined, hint), Source::Builtin),
            },
        };
        let (label, score) = insights::sentiment(recent);
        let scored = |other: SentimentLabel, source| Sentiment {
            label: other,
            score: if other == label {
                score
            } else {
                canonical_score(other)
            },
            source,
        };
        let sentiment = match request
            .and_then(|r| r.sentiment.as_deref())
            .and_then(SentimentLabel::parse)
        {
            Some(agent_label) => scored(agent_label, Source::Agent),
            None => match from_model {
                Some(m) => scored(m.sentiment, Source::Bedrock),
                None => Sentiment {
                    label,
                    score,
                    source: Source::Builtin,
                },
            },
        };
        let builtin = || builtin_summary(recent);
        let (summary, summary_source, summary_by) = match (agent_summary, &model) {
            (Some(s), _) => (s, Source::Agent, "the AI agent".to_owned()),
            (None, Some((by, Ok(m)))) => (m.summary.clone(), Source::Bedrock, by.clone()),
            (None, Some((by, Err(why)))) => (
                builtin(),
                Source::Builtin,
                format!("Baton's built-in summary, because {by} {why}"),
            ),
            (None, None) => match &self.llm {
                Some(llm) => match llm.summarize(&String::from_utf8_lossy(transcript)).await {
                    Ok(s) => (s, Source::Llm, "the configured LLM".to_owned()),
                    Err(e) => {
                        tracing::warn!(error = %e, "the LLM summary failed; using the built-in one");
                        (
                            builtin(),
                            Source::Builtin,
                            "Baton's built-in summary, because the configured LLM failed"
                                .to_owned(),
                        )
                    }
                },
                None => (
                    builtin(),
                    Source::Builtin,
                    "Baton's built-in summary (the customer's first and last lines)".to_owned(),
                ),
            },
        };
        Insights {
            language,
            language_source,
            sentiment,
            summary,
            summary_source,
            summary_by: Some(summary_by),
            model_reason: from_model.map(|m| m.escalation_reason.clone()),
        }
    }
}

fn builtin_summary(texts: &[String]) -> String {
    let s = insights::summary(texts, SUMMARY_CHARS);
    if s.is_empty() {
        "The customer sent no text (media or reactions only).".into()
    } else {
        s
    }
}

fn canonical_score(label: SentimentLabel) -> f64 {
    match label {
        SentimentLabel::Negative => -0.5,
        SentimentLabel::Neutral => 0.0,
        SentimentLabel::Positive => 0.5,
    }
}

/// A customer's file: settled (copied, or failed for good, or copied just now), or a copy still
/// to be made or running.
enum FileCopy {
    Settled(MediaRecord),
    Pending(MediaJob),
}

/// How often a handoff waiting for a queued copy looks for its outcome.
const MEDIA_POLL: Duration = Duration::from_millis(200);

/// Whether `r` is the outcome of a copy queued at `since` (ms; 0 for the first copy): copied,
/// failed for good, or failed by that copy.
fn is_outcome_since(r: &MediaRecord, since: i64) -> bool {
    r.state == MediaState::Copied || !r.retryable || r.updated_at_ms >= since
}

/// The records among `media` still pending.
fn pending_of<'a>(media: impl Iterator<Item = &'a MediaRecord>) -> Vec<MediaRecord> {
    media
        .filter(|m| m.state == MediaState::Pending)
        .cloned()
        .collect()
}

/// Whether `m` came after everything the handoff's transcript holds.
fn follows(handoff: &HandoffRecord, m: &MessageRecord) -> bool {
    match &handoff.transcript.last_order_key {
        Some(last) => m.order_key() > *last,
        // Written before transcripts kept their last key: what arrived after it was written.
        None => m.received_at_ms > handoff.created_at_ms,
    }
}

/// What the customer wrote in a message, for detection: text, a caption, a tapped reply.
pub fn customer_words(msg: &InboundMessage) -> Option<String> {
    match &msg.content {
        Content::Text(t) => Some(t.body.clone()),
        Content::Button(b) => Some(b.text.clone()),
        Content::Interactive(
            Interactive::ButtonReply { title, .. } | Interactive::ListReply { title, .. },
        ) => Some(title.clone()),
        Content::Edit(e) => e.message.as_ref().and_then(customer_words),
        other => other.media().and_then(|m| m.caption.clone()),
    }
    .filter(|t| !t.trim().is_empty())
}
