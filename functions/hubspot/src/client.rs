//! The one HubSpot client of a function: a [`Transport`] (HTTP, or the outbox), a client-side rate
//! limiter (search has its own bucket), and the retry policy: 429 honoured (`Retry-After`, else
//! the rolling window), 5xx and timeouts retried with jittered exponential backoff until the
//! deadline, 4xx handed back to the caller to classify.

use baton_shared::http::ClientError;
use baton_shared::observe::{self, metric};
use baton_shared::retry::Backoff;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;
use tokio::time::Instant;

use crate::config::Limits;
use crate::error::{HubspotError, problem_of, required_properties};
use crate::outbox::OutboxTransport;
use crate::transport::{Bucket, Call, HttpTransport, Reply, Retry, Transport};

/// HubSpot's answer: any status but 429, 5xx, 401 and 403.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn id(&self) -> Option<String> {
        json_id(self.body.get("id"))
    }

    /// The answer as an error of `step` (HubSpot's message and correlation id). When the portal's
    /// own rules require properties Baton does not set, the error names them and the setting
    /// that gives them values.
    pub fn rejected(&self, step: &'static str) -> HubspotError {
        let p = problem_of(&self.body);
        let required = required_properties(&self.body);
        let message = if required.is_empty() {
            p.message
        } else {
            let setting = match step {
                "contact" => crate::config::CONTACT_DEFAULTS,
                _ => crate::config::TICKET_DEFAULTS,
            };
            format!(
                "{}; the portal requires {} on a new {step}: give {} a value in {setting} (JSON)",
                p.message,
                required.join(", "),
                if required.len() == 1 { "it" } else { "them" },
            )
        };
        HubspotError::Rejected {
            step,
            status: self.status,
            message,
            correlation_id: p.correlation_id,
        }
    }
}

/// A HubSpot id, which arrives as a string or as a number.
pub fn json_id(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// A rolling-window limiter: at most `max` requests in any `window`, and nothing before
/// `paused_until` (set by a 429).
struct Window {
    max: usize,
    window: Duration,
    /// Least time between two requests: spreads a burst so that, whatever the network's jitter,
    /// no rolling window on HubSpot's side sees more than `max` (search: 4 per second, 250 ms
    /// apart, against HubSpot's 5).
    spacing: Duration,
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
    /// Set by a 429 with policy `DAILY`: until then every call fails at once, unsent.
    exhausted_until: Option<Instant>,
}

impl Window {
    fn new(max: u32, window: Duration, spread: bool) -> Self {
        let max = max.max(1);
        Self {
            max: max as usize,
            window,
            spacing: if spread { window / max } else { Duration::ZERO },
            sent: VecDeque::new(),
            paused_until: None,
            exhausted_until: None,
        }
    }

    /// Reserves a slot: how long to wait before sending (zero when the slot is free now).
    fn reserve(&mut self, now: Instant) -> Duration {
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.sent.pop_front();
        }
        let mut at = now;
        if let Some(p) = self.paused_until {
            at = at.max(p);
        }
        if let Some(last) = self.sent.back() {
            at = at.max(*last + self.spacing);
        }
        if self.sent.len() >= self.max {
            let idx = self.sent.len() - self.max;
            at = at.max(self.sent[idx] + self.window);
        }
        self.sent.push_back(at);
        at.saturating_duration_since(now)
    }

    /// Gives back the slot the last `reserve` took, for a request that will not be sent.
    fn release_last(&mut self) {
        self.sent.pop_back();
    }

    fn pause(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    fn exhausted(&self, now: Instant) -> bool {
        self.exhausted_until.is_some_and(|t| now < t)
    }
}

/// Counts what the client sent, for the benchmark and the logs.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
}

pub struct HubspotClient {
    transport: Box<dyn Transport>,
    general: std::sync::Mutex<Window>,
    search: std::sync::Mutex<Window>,
    /// Waits between attempts of one call (and of a create's look-ups).
    pub backoff: Backoff,
    /// How long HubSpot may still carry out a create whose answer was lost: a note's look-up
    /// keeps looking this long before the note is posted again (notes have no unique property
    /// that would refuse the second one).
    pub settle: Duration,
    pub counters: Counters,
}

impl HubspotClient {
    /// The HTTP client `cfg` describes; `None` without a token.
    pub fn from_config(cfg: &crate::HubspotConfig) -> Result<Option<Self>, ClientError> {
        cfg.token
            .as_ref()
            .map(|token| Self::http(&cfg.base_url, token.clone(), cfg.limits, cfg.timeout))
            .transpose()
    }

    pub fn http(
        base_url: &str,
        token: SecretString,
        limits: Limits,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let transport = HttpTransport::new(base_url, token, timeout)?;
        Ok(Self::new(Box::new(transport), limits))
    }

    /// Writes every request to `outbox` instead of sending it (`baton-local` without a token).
    pub fn outbox(outbox: OutboxTransport) -> Self {
        Self::new(Box::new(outbox), Limits::default())
    }

    pub fn new(transport: Box<dyn Transport>, limits: Limits) -> Self {
        Self {
            transport,
            general: std::sync::Mutex::new(Window::new(
                limits.per_ten_seconds,
                Duration::from_secs(10),
                false,
            )),
            search: std::sync::Mutex::new(Window::new(
                limits.search_per_second,
                Duration::from_secs(1),
                true,
            )),
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(8), 6),
            settle: Duration::from_secs(10),
            counters: Counters::default(),
        }
    }

    pub fn is_outbox(&self) -> bool {
        self.transport.is_outbox()
    }

    fn window(&self, bucket: Bucket) -> &std::sync::Mutex<Window> {
        match bucket {
            Bucket::General => &self.general,
            Bucket::Search => &self.search,
        }
    }

    /// Waits for the limiter's slot for `call`, or fails at once, unsent, when the daily limit is
    /// used up or the slot comes after `deadline` (a 429's pause can outlast a Lambda run).
    async fn wait_turn(&self, call: &Call, deadline: Instant) -> Result<(), HubspotError> {
        let now = Instant::now();
        // The daily limit covers every call, search too.
        if self.general.lock().expect("limiter").exhausted(now) {
            return Err(HubspotError::DailyLimit {
                step: call.step,
                correlation_id: None,
            });
        }
        let wait = {
            let mut window = self.window(call.bucket).lock().expect("limiter");
            let wait = window.reserve(now);
            if now + wait >= deadline {
                window.release_last();
                return Err(HubspotError::Unavailable {
                    step: call.step,
                    status: Some(429),
                    message: format!(
                        "the rate limit allows the next call in {} ms, after this run's deadline",
                        wait.as_millis()
                    ),
                    correlation_id: None,
                });
            }
            wait
        };
        if !wait.is_zero() {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "waiting for the HubSpot rate limit"
            );
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    async fn attempt(&self, call: &Call) -> Result<Reply, HubspotError> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.transport.send(call).await
    }

    /// Sends `call`, retrying what may be retried until `deadline`. 2xx and 4xx (but 401/403)
    /// come back as an [`Answer`] for the caller to read.
    pub async fn call(&self, call: &Call, deadline: Instant) -> Result<Answer, HubspotError> {
        let mut attempt = 0u32;
        loop {
            self.wait_turn(call, deadline).await?;
            observe::count(metric::HUBSPOT_CALLS, 1);
            let reply = self.attempt(call).await?;
            let (wait, failure) = match reply {
                Reply::Answer {
                    status: 429,
                    retry_after,
                    body,
                } => {
                    self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let p = problem_of(&body);
                    if p.policy.as_deref() == Some("DAILY") {
                        // Nothing succeeds before the reset: stop calling (in this container,
                        // for an hour or what Retry-After says) and park the handoff.
                        let wait = retry_after.unwrap_or(Duration::from_secs(3600));
                        self.general.lock().expect("limiter").exhausted_until =
                            Some(Instant::now() + wait);
                        tracing::error!(
                            step = call.step,
                            correlation_id = p.correlation_id.as_deref().unwrap_or("-"),
                            "HubSpot's daily API limit is used up"
                        );
                        return Err(HubspotError::DailyLimit {
                            step: call.step,
                            correlation_id: p.correlation_id,
                        });
                    }
                    // Without Retry-After, wait out the rolling window (search: one second).
                    let wait = retry_after.unwrap_or(match call.bucket {
                        Bucket::Search => Duration::from_secs(1),
                        Bucket::General => Duration::from_secs(10),
                    });
                    self.window(call.bucket)
                        .lock()
                        .expect("limiter")
                        .pause(Instant::now() + wait);
                    tracing::warn!(
                        step = call.step,
                        policy = p.policy.as_deref().unwrap_or("-"),
                        wait_ms = wait.as_millis() as u64,
                        "HubSpot rate limit (429)"
                    );
                    (
                        wait,
                        HubspotError::Unavailable {
                            step: call.step,
                            status: Some(429),
                            message: p.message,
                            correlation_id: p.correlation_id,
                        },
                    )
                }
                Reply::Answer { status, body, .. } if status == 401 || status == 403 => {
                    let p = problem_of(&body);
                    // 401: the token itself is refused; 403: it lacks the request's scope.
                    let (message, scope) = if status == 401 {
                        (
                            format!(
                                "HubSpot refused HUBSPOT_ACCESS_TOKEN (invalid, revoked or rotated): {}",
                                p.message
                            ),
                            None,
                        )
                    } else {
                        (p.message, Some(call.scope).filter(|s| !s.is_empty()))
                    };
                    return Err(HubspotError::Configuration {
                        step: call.step,
                        status,
                        message,
                        scope,
                        correlation_id: p.correlation_id,
                    });
                }
                Reply::Answer { status, body, .. } if status >= 500 => {
                    let p = problem_of(&body);
                    let failure = HubspotError::Unavailable {
                        step: call.step,
                        status: Some(status),
                        message: p.message,
                        correlation_id: p.correlation_id,
                    };
                    if call.retry == Retry::Create {
                        return Err(failure.uncertain());
                    }
                    (self.backoff.delay(attempt), failure)
                }
                Reply::Answer { status, body, .. } => return Ok(Answer { status, body }),
                Reply::Lost(why) => {
                    let failure = HubspotError::Unavailable {
                        step: call.step,
                        status: None,
                        message: why,
                        correlation_id: None,
                    };
                    if call.retry == Retry::Create {
                        return Err(failure.uncertain());
                    }
                    (self.backoff.delay(attempt), failure)
                }
            };
            attempt += 1;
            if attempt >= self.backoff.attempts || Instant::now() + wait >= deadline {
                return Err(failure);
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            observe::count(metric::HUBSPOT_RETRIES, 1);
            tracing::info!(step = call.step, attempt, error = %failure.log_summary(), wait_ms = wait.as_millis() as u64, "retrying a HubSpot call");
            // A 429's wait is served by the limiter's pause before the next attempt.
            if !matches!(
                failure,
                HubspotError::Unavailable {
                    status: Some(429),
                    ..
                }
            ) {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Sends `call` and returns the answer's `results`; anything but a 2xx is refused.
    pub async fn results(
        &self,
        call: &Call,
        deadline: Instant,
    ) -> Result<Vec<Value>, HubspotError> {
        let answer = self.call(call, deadline).await?;
        if !answer.is_success() {
            return Err(answer.rejected(call.step));
        }
        Ok(match answer.body {
            Value::Object(mut o) => match o.remove("results") {
                Some(Value::Array(r)) => r,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
    }

    /// The id of the record a read by a unique property ([`crate::api::read_by_unique`])
    /// finds; `None` on a 404.
    pub async fn find_by_unique(
        &self,
        call: Call,
        deadline: Instant,
    ) -> Result<Option<String>, HubspotError> {
        let answer = self.call(&call, deadline).await?;
        match answer.status {
            404 => Ok(None),
            _ if answer.is_success() => Ok(answer.id()),
            _ => Err(answer.rejected(call.step)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_spaces_requests_and_honours_a_pause() {
        let t0 = Instant::now();
        let mut w = Window::new(2, Duration::from_secs(1), false);
        assert_eq!(w.reserve(t0), Duration::ZERO);
        assert_eq!(w.reserve(t0), Duration::ZERO);
        assert_eq!(
            w.reserve(t0),
            Duration::from_secs(1),
            "third waits a window"
        );
        assert_eq!(w.reserve(t0), Duration::from_secs(1));
        assert_eq!(w.reserve(t0), Duration::from_secs(2));
        let mut w = Window::new(10, Duration::from_secs(10), false);
        w.pause(t0 + Duration::from_secs(3));
        assert_eq!(w.reserve(t0), Duration::from_secs(3));
        // Search spreads its four a second 250 ms apart.
        let mut w = Window::new(4, Duration::from_secs(1), true);
        let waits: Vec<u128> = (0..6).map(|_| w.reserve(t0).as_millis()).collect();
        assert_eq!(waits, [0, 250, 500, 750, 1000, 1250]);
        w.release_last();
        assert_eq!(
            w.reserve(t0).as_millis(),
            1250,
            "a released slot is free again"
        );
    }
}
