//! WhatsApp's 24-hour customer service window: free-form replies are allowed until 24 hours after
//! the customer's last inbound message.

/// The reply window opened by a customer's last inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyWindow {
    /// Unix seconds of the customer's last inbound message.
    pub last_inbound_at: i64,
}

impl ReplyWindow {
    pub const LENGTH_SECS: i64 = 24 * 60 * 60;

    pub fn closes_at(self) -> i64 {
        self.last_inbound_at + Self::LENGTH_SECS
    }

    pub fn is_open_at(self, now_secs: i64) -> bool {
        now_secs < self.closes_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_exactly_24_hours_after_the_last_inbound_message() {
        let w = ReplyWindow {
            last_inbound_at: 1_750_000_000,
        };
        assert_eq!(w.closes_at(), 1_750_086_400);
        assert!(w.is_open_at(1_750_086_399));
        assert!(!w.is_open_at(1_750_086_400));
    }
}
