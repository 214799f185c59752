//! The one retry policy. Every failure is classified once ([`Classify`]): worth retrying (the
//! peer was away, overloaded or slow), worth parking with its reason for a replay (refused, or
//! misconfigured: a person must act), or dropped (it can never succeed). Every wait between
//! attempts is one [`Backoff`]: exponential, jittered, bounded in attempts and by a deadline.
//! The AWS SDK's own retries are configured here too ([`aws_retry_config`]), so the layers are
//! chosen, not stacked by accident.

use std::time::Duration;

use tokio::time::Instant;

/// What a failure allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Trying again may succeed.
    Retry,
    /// Trying again will not help until something changes: keep it, with its reason, for replay.
    Park,
    /// It can never succeed (an unreadable record).
    Drop,
}

/// A failure that knows its [`ErrorClass`].
pub trait Classify {
    fn class(&self) -> ErrorClass;

    fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retry
    }
}

/// Exponential backoff with jitter: attempt `n` waits between half and all of
/// `first × 2ⁿ` (at most `max`), and gives up after `attempts` or at a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// Attempts in all, the first included.
    pub attempts: u32,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration, attempts: u32) -> Self {
        Self {
            first,
            max,
            attempts,
        }
    }

    /// The wait after failed attempt `attempt` (0 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let full = self
            .first
            .saturating_mul(1 << attempt.min(16))
            .min(self.max);
        full.mul_f64(0.5 + jitter() / 2.0)
    }

    /// Whether attempt `attempt + 1` may be made: false when the attempts are used up or its
    /// wait would pass `deadline`; otherwise waits first.
    pub async fn pause(&self, attempt: u32, deadline: Instant) -> bool {
        if attempt + 1 >= self.attempts {
            return false;
        }
        let wait = self.delay(attempt);
        if Instant::now() + wait >= deadline {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }
}

/// A random fraction in [0, 1]; 0.5 where the system offers no randomness.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX),
        Err(_) => 0.5,
    }
}

/// The AWS SDK's retries for every client Baton builds: the standard mode (throttling, 5xx and
/// transport errors, with its own jittered backoff), 3 attempts. Baton's own loops sit above it
/// only for what the SDK does not retry (a transaction cancelled by a conflict).
pub fn aws_retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard().with_max_attempts(3)
}

/// The AWS configuration from the environment, with [`aws_retry_config`].
pub async fn load_aws() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_retry_config())
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_stay_jittered_within_bounds_and_end() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800), 4);
        for attempt in 0..8 {
            let full = (100u64 << attempt).min(800);
            let d = b.delay(attempt).as_millis() as u64;
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d} ms of {full}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pausing_stops_at_the_attempts_or_the_deadline() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 3);
        let far = Instant::now() + Duration::from_secs(60);
        assert!(b.pause(0, far).await);
        assert!(b.pause(1, far).await);
        assert!(!b.pause(2, far).await, "3 attempts in all");
        let near = Instant::now() + Duration::from_millis(10);
        assert!(!b.pause(0, near).await, "the wait would pass the deadline");
    }
}
