//! `X-Hub-Signature-256` verification: HMAC-SHA256 over the exact raw body bytes, keyed with the
//! Meta App Secret, compared in constant time. Several secrets may be active at once while one is
//! rotated. [`sign`] is public so tests and tools can build valid signatures.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header Meta signs deliveries with (API Gateway lower-cases it; `http` matches either).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Why a delivery's signature was refused. Every variant answers 401. `Display` words it for
/// Meta's webhook; [`SignatureError::explain`] for any header and secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("{}", self.explain("X-Hub-Signature-256", "app secret"))]
    Missing,
    #[error("{}", self.explain("X-Hub-Signature-256", "app secret"))]
    Duplicated,
    #[error("{}", self.explain("X-Hub-Signature-256", "app secret"))]
    Malformed,
    #[error("{}", self.explain("X-Hub-Signature-256", "app secret"))]
    Mismatch,
}

impl SignatureError {
    /// The reason, naming the header that carried the signature and the secret that keys it.
    pub fn explain(&self, header: &str, secret: &str) -> String {
        match self {
            Self::Missing => format!("the {header} header is missing"),
            Self::Duplicated => format!("the {header} header appears more than once"),
            Self::Malformed => {
                format!("the {header} header is not `sha256=` followed by 64 hex digits")
            }
            Self::Mismatch => {
                format!("the signature does not match the body under any configured {secret}")
            }
        }
    }
}

/// The app secrets a delivery may be signed with: the current one and, during rotation, others.
#[derive(Clone)]
pub struct AppSecrets(Vec<SecretString>);

impl std::fmt::Debug for AppSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppSecrets({} configured)", self.0.len())
    }
}

impl AppSecrets {
    /// Parses a comma-separated list; blank entries are ignored. `None` when no secret remains.
    pub fn parse(list: &str) -> Option<Self> {
        let secrets: Vec<SecretString> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        (!secrets.is_empty()).then_some(Self(secrets))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every secret, the current one first.
    pub fn iter(&self) -> impl Iterator<Item = &SecretString> {
        self.0.iter()
    }

    /// The secret new signatures are made with (the first one listed).
    pub fn current(&self) -> &SecretString {
        &self.0[0]
    }

    /// Checks every value the request carried for the header (zero, one or several).
    pub fn verify<'a, I>(&self, header_values: I, body: &[u8]) -> Result<(), SignatureError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut values = header_values.into_iter();
        let value = values.next().ok_or(SignatureError::Missing)?;
        if values.next().is_some() {
            return Err(SignatureError::Duplicated);
        }
        let expected = parse_header(value)?;
        let matched = self.0.iter().any(|secret| {
            let mut mac = mac(secret);
            mac.update(body);
            // verify_slice compares in constant time.
            mac.verify_slice(&expected).is_ok()
        });
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

fn mac(secret: &SecretString) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length")
}

/// Decodes `sha256=<64 hex digits>` (either case). API Gateway joins repeated headers with commas,
/// which therefore fail here as malformed.
fn parse_header(value: &[u8]) -> Result<[u8; 32], SignatureError> {
    let value = value.trim_ascii();
    let hex_digits = value
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    if value.contains(&b',') {
        return Err(SignatureError::Duplicated);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut out).map_err(|_| SignatureError::Malformed)?;
    Ok(out)
}

/// The header value Meta would send for `body` signed with `secret`: `sha256=<lowercase hex>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    fn secrets() -> AppSecrets {
        AppSecrets::parse("current-secret, previous-secret").unwrap()
    }

    fn check(values: &[&str]) -> Result<(), SignatureError> {
        secrets().verify(values.iter().map(|v| v.as_bytes()), BODY)
    }

    #[test]
    fn accepts_the_current_and_the_previous_secret() {
        assert_eq!(check(&[&sign("current-secret", BODY)]), Ok(()));
        assert_eq!(check(&[&sign("previous-secret", BODY)]), Ok(()));
    }

    #[test]
    fn refuses_a_secret_that_is_not_configured() {
        assert_eq!(
            check(&[&sign("other-secret", BODY)]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn refuses_a_valid_signature_of_a_different_body() {
        let other = sign(
            "current-secret",
            br#"{"object":"whatsapp_business_account"}"#,
        );
        assert_eq!(check(&[&other]), Err(SignatureError::Mismatch));
    }

    #[test]
    fn accepts_uppercase_hex_because_it_is_the_same_digest() {
        let sig = sign("current-secret", BODY);
        let upper = format!("sha256={}", sig["sha256=".len()..].to_uppercase());
        assert_eq!(check(&[&upper]), Ok(()));
    }

    #[test]
    fn refuses_malformed_headers() {
        let sig = sign("current-secret", BODY);
        let hex = &sig["sha256=".len()..];
        for bad in [
            format!("sha1={hex}"),
            hex.to_owned(),
            "sha256=".to_owned(),
            format!("sha256={}", &hex[..62]),
            format!("sha256={hex}00"),
            format!("sha256={}zz", &hex[..62]),
            format!("SHA256={hex}"),
            String::new(),
        ] {
            assert_eq!(check(&[&bad]), Err(SignatureError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn refuses_a_missing_or_duplicated_header() {
        let sig = sign("current-secret", BODY);
        assert_eq!(check(&[]), Err(SignatureError::Missing));
        assert_eq!(check(&[&sig, &sig]), Err(SignatureError::Duplicated));
        assert_eq!(
            check(&[&format!("{sig},{sig}")]),
            Err(SignatureError::Duplicated)
        );
    }

    #[test]
    fn secrets_list_ignores_blanks_and_never_prints_values() {
        assert!(AppSecrets::parse(" , ,").is_none());
        let s = AppSecrets::parse("a,,b").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(format!("{s:?}"), "AppSecrets(2 configured)");
    }
}
