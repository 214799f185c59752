//! Signed links to a handoff's session page (`/sessions/{id}?t=<token>`): the token is an
//! HMAC-SHA256 (`SESSION_LINK_SECRET`) over the handoff id and an expiry, so a link in HubSpot
//! opens the page until it expires and cannot be forged or moved to another session.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// How long a link stays valid unless configured otherwise.
pub const DEFAULT_TTL_DAYS: u32 = 30;

/// Makes and checks session links.
#[derive(Debug, Clone)]
pub struct SessionLinks {
    /// The public address the webhook function answers on, without a trailing slash.
    pub base_url: String,
    pub secret: SecretString,
    pub ttl_secs: i64,
}

impl SessionLinks {
    pub fn new(base_url: &str, secret: SecretString, ttl_days: u32) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret,
            ttl_secs: i64::from(ttl_days) * 86_400,
        }
    }

    fn mac(&self, id: &str, expires_at: i64) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(format!("{id}.{expires_at}").as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The token for `id`, valid until `now_secs` + the TTL.
    pub fn token(&self, id: &str, now_secs: i64) -> String {
        let expires_at = now_secs + self.ttl_secs;
        format!("{expires_at}.{}", hex::encode(self.mac(id, expires_at)))
    }

    /// The page's address for `id`, signed at `now_secs`.
    pub fn link(&self, id: &str, now_secs: i64) -> String {
        format!(
            "{}/sessions/{id}?t={}",
            self.base_url,
            self.token(id, now_secs)
        )
    }

    /// Whether `token` was made for `id` and has not expired at `now_secs`.
    pub fn verify(&self, id: &str, token: &str, now_secs: i64) -> bool {
        let Some((expiry, mac)) = token.split_once('.') else {
            return false;
        };
        let (Ok(expires_at), Ok(mac)) = (expiry.parse::<i64>(), hex::decode(mac)) else {
            return false;
        };
        use subtle::ConstantTimeEq;
        now_secs < expires_at && bool::from(self.mac(id, expires_at).ct_eq(&mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_for_their_session_until_they_expire() {
        let links = SessionLinks::new("https://x.example/", SecretString::from("k"), 30);
        let link = links.link("ho_1", 1_000);
        assert!(link.starts_with("https://x.example/sessions/ho_1?t=2593000."));
        let token = link.split("?t=").nth(1).unwrap();
        assert!(links.verify("ho_1", token, 1_000));
        assert!(links.verify("ho_1", token, 2_592_999));
        assert!(!links.verify("ho_1", token, 2_593_000), "expired");
        assert!(!links.verify("ho_2", token, 1_000), "another session");
        let forged = token.replace("2593000", "9993000");
        assert!(!links.verify("ho_1", &forged, 1_000), "a moved expiry");
        let other = SessionLinks::new("https://x.example", SecretString::from("k2"), 30);
        assert!(!other.verify("ho_1", token, 1_000), "another secret");
        assert!(!links.verify("ho_1", "garbage", 1_000));
    }
}
