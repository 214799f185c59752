//! HubSpot's webhook as Baton receives it at `POST /hubspot/events`: the v3 request signature and
//! the CRM events it carries.
//!
//! v3 signature (developers.hubspot.com, "Validating requests"): `X-HubSpot-Signature-v3` is the
//! base64 HMAC-SHA256, keyed with the app's client secret, of `method + URI + body + timestamp`,
//! where the timestamp is `X-HubSpot-Request-Timestamp` (ms) and the URI is the full URL HubSpot
//! called, with a fixed set of percent-encoded characters decoded. A timestamp older than five
//! minutes is refused, so a captured request cannot be replayed later.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::Sha256;

use baton_shared::domain::REPLY_PROPERTY;
use baton_shared::whatsapp::AppSecrets;

pub const SIGNATURE_HEADER: &str = "x-hubspot-signature-v3";
pub const TIMESTAMP_HEADER: &str = "x-hubspot-request-timestamp";
/// How old (or how far ahead of our clock) a request's timestamp may be.
pub const MAX_AGE_MS: i64 = 5 * 60 * 1000;
/// HubSpot sends at most 100 events per request; a body this large is not HubSpot's.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The ticket property holding the ticket's stage.
pub const STAGE_PROPERTY: &str = "hs_pipeline_stage";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubspotSignatureError {
    #[error("the request has no X-HubSpot-Signature-v3 header")]
    Missing,
    #[error("the request has no usable X-HubSpot-Request-Timestamp header")]
    NoTimestamp,
    #[error("the request's timestamp is more than 5 minutes away from now")]
    Stale,
    #[error(
        "the X-HubSpot-Signature-v3 signature does not match (is HUBSPOT_APP_SECRET the app's client secret, and the app's target URL this endpoint's?)"
    )]
    Mismatch,
}

/// Decodes the characters HubSpot's v3 instructions name, as HubSpot does before signing.
pub fn decode_uri(uri: &str) -> String {
    const DECODED: &[(&str, char)] = &[
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3).map(str::to_ascii_uppercase);
        match code.and_then(|c| DECODED.iter().find(|(k, _)| *k == c)) {
            Some((_, ch)) => {
                out.push(*ch);
                rest = &rest[i + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Checks a request's v3 signature against every secret and every URI it may have been sent to
/// (behind a proxy the public URL is not the one the request line shows).
pub fn verify_v3(
    secrets: &AppSecrets,
    method: &str,
    uris: &[String],
    body: &[u8],
    signature: Option<&[u8]>,
    timestamp: Option<&[u8]>,
    now_ms: i64,
) -> Result<(), HubspotSignatureError> {
    let signature = signature.ok_or(HubspotSignatureError::Missing)?;
    let expected = base64::engine::general_purpose::STANDARD
        .decode(signature.trim_ascii())
        .map_err(|_| HubspotSignatureError::Mismatch)?;
    let timestamp = timestamp
        .and_then(|t| std::str::from_utf8(t).ok())
        .map(str::trim)
        .ok_or(HubspotSignatureError::NoTimestamp)?;
    let at: i64 = timestamp
        .parse()
        .map_err(|_| HubspotSignatureError::NoTimestamp)?;
    if (now_ms - at).abs() > MAX_AGE_MS {
        return Err(HubspotSignatureError::Stale);
    }
    for secret in secrets.iter() {
        for uri in uris {
            let mac = v3_mac(secret.expose_secret(), method, uri, body, timestamp);
            if mac.verify_slice(&expected).is_ok() {
                return Ok(());
            }
        }
    }
    Err(HubspotSignatureError::Mismatch)
}

/// The `X-HubSpot-Signature-v3` value HubSpot sends for a request (the doctor signs its test
/// event with it).
pub fn sign_v3(secret: &str, method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    let mac = v3_mac(secret, method, uri, body, timestamp);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn v3_mac(secret: &str, method: &str, uri: &str, body: &[u8], timestamp: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(method.as_bytes());
    mac.update(decode_uri(uri).as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac
}

/// A webhook subscription Baton's HubSpot app declares: exactly the events [`CrmEvent::signal`]
/// reads. The app's webhooks file (`hubspot-app/`) is written from this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    pub kind: &'static str,
    /// The property a property-change subscription is for.
    pub property: Option<&'static str>,
}

pub const TICKET_PROPERTY_CHANGE: &str = "ticket.propertyChange";
pub const TICKET_DELETION: &str = "ticket.deletion";

pub const SUBSCRIPTIONS: &[Subscription] = &[
    Subscription {
        kind: TICKET_PROPERTY_CHANGE,
        property: Some(REPLY_PROPERTY),
    },
    Subscription {
        kind: TICKET_PROPERTY_CHANGE,
        property: Some(STAGE_PROPERTY),
    },
    Subscription {
        kind: TICKET_DELETION,
        property: None,
    },
];

/// One event of a webhook request (HubSpot sends a JSON array of them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmEvent {
    pub event_id: u64,
    #[serde(default)]
    pub subscription_id: u64,
    #[serde(default)]
    pub portal_id: u64,
    #[serde(default)]
    pub app_id: u64,
    /// Milliseconds.
    pub occurred_at: i64,
    pub subscription_type: String,
    #[serde(default)]
    pub attempt_number: u32,
    pub object_id: u64,
    #[serde(default)]
    pub property_name: Option<String>,
    #[serde(default)]
    pub property_value: Option<String>,
    #[serde(default)]
    pub change_source: Option<String>,
}

/// What a CRM event means for Baton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketSignal {
    /// A rep set the reply property.
    Reply { text: String },
    /// The ticket moved to `stage`.
    Stage { stage: String },
    /// The ticket was deleted.
    Deleted,
}

impl CrmEvent {
    /// The same for every delivery of this event: HubSpot retries send the same event id and
    /// occurrence time.
    pub fn key(&self) -> String {
        format!(
            "{:013}#{}#{}",
            self.occurred_at.max(0),
            self.object_id,
            self.event_id
        )
    }

    pub fn ticket_id(&self) -> String {
        self.object_id.to_string()
    }

    /// What the event asks of Baton, if anything: only ticket events, only Baton's reply
    /// property (not blank: clearing it is Baton's own doing) and the stage.
    pub fn signal(&self) -> Option<TicketSignal> {
        match self.subscription_type.as_str() {
            TICKET_PROPERTY_CHANGE => match self.property_name.as_deref() {
                Some(REPLY_PROPERTY) => self
                    .property_value
                    .as_deref()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| TicketSignal::Reply { text: v.to_owned() }),
                Some(STAGE_PROPERTY) => self
                    .property_value
                    .clone()
                    .filter(|v| !v.is_empty())
                    .map(|stage| TicketSignal::Stage { stage }),
                _ => None,
            },
            TICKET_DELETION => Some(TicketSignal::Deleted),
            _ => None,
        }
    }
}

/// Reads a webhook body: an array of events.
pub fn parse_events(body: &[u8]) -> Result<Vec<CrmEvent>, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a HubSpot webhook body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, method: &str, uri: &str, body: &str, ts: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{method}{uri}{body}{ts}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    #[test]
    fn a_v3_signature_is_checked_over_method_uri_body_and_timestamp() {
        let secrets = AppSecrets::parse("old-secret, client-secret").unwrap();
        let uri = "https://baton.example.com/hubspot/events?x=a:b".to_owned();
        let body = br#"[{"eventId":1}]"#;
        let now = 1_750_000_000_000_i64;
        let ts = (now - 1000).to_string();
        let sig = sign(
            "client-secret",
            "POST",
            &uri,
            std::str::from_utf8(body).unwrap(),
            &ts,
        );
        // HubSpot signs the decoded URI; the request may carry it encoded.
        let encoded = vec!["https://baton.example.com/hubspot/events?x=a%3Ab".to_owned()];
        let check = |sig: &str, ts: &str, uris: &[String], body: &[u8]| {
            verify_v3(
                &secrets,
                "POST",
                uris,
                body,
                Some(sig.as_bytes()),
                Some(ts.as_bytes()),
                now,
            )
        };
        assert_eq!(check(&sig, &ts, &encoded, body), Ok(()));
        assert_eq!(
            check(&sig, &ts, &["http://other/hubspot/events".into()], body),
            Err(HubspotSignatureError::Mismatch)
        );
        assert_eq!(
            check(&sig, &ts, &encoded, br#"[{"eventId":2}]"#),
            Err(HubspotSignatureError::Mismatch)
        );
        let old = (now - MAX_AGE_MS - 1).to_string();
        let sig_old = sign(
            "client-secret",
            "POST",
            &uri,
            std::str::from_utf8(body).unwrap(),
            &old,
        );
        assert_eq!(
            check(&sig_old, &old, &encoded, body),
            Err(HubspotSignatureError::Stale)
        );
        assert_eq!(
            check(&sig, "soon", &encoded, body),
            Err(HubspotSignatureError::NoTimestamp)
        );
        assert_eq!(
            verify_v3(
                &secrets,
                "POST",
                &encoded,
                body,
                None,
                Some(ts.as_bytes()),
                now
            ),
            Err(HubspotSignatureError::Missing)
        );
    }

    #[test]
    fn every_subscription_the_app_declares_means_something() {
        for sub in SUBSCRIPTIONS {
            let event = CrmEvent {
                event_id: 1,
                subscription_id: 0,
                portal_id: 0,
                app_id: 0,
                occurred_at: 1,
                subscription_type: sub.kind.to_owned(),
                attempt_number: 0,
                object_id: 7,
                property_name: sub.property.map(str::to_owned),
                property_value: Some("4".into()),
                change_source: None,
            };
            assert!(event.signal().is_some(), "{sub:?} is declared but ignored");
        }
    }

    #[test]
    fn only_the_reply_property_the_stage_and_deletions_mean_something() {
        let events = parse_events(br#"[
            {"eventId":1,"subscriptionId":2,"portalId":3,"appId":4,"occurredAt":1750000000000,"subscriptionType":"ticket.propertyChange","attemptNumber":0,"objectId":77,"changeSource":"CRM_UI","propertyName":"baton_whatsapp_reply","propertyValue":"  Hello!  "},
            {"eventId":2,"occurredAt":1750000000001,"subscriptionType":"ticket.propertyChange","objectId":77,"propertyName":"baton_whatsapp_reply","propertyValue":""},
            {"eventId":3,"occurredAt":1750000000002,"subscriptionType":"ticket.propertyChange","objectId":77,"propertyName":"hs_pipeline_stage","propertyValue":"4"},
            {"eventId":4,"occurredAt":1750000000003,"subscriptionType":"ticket.propertyChange","objectId":77,"propertyName":"subject","propertyValue":"x"},
            {"eventId":5,"occurredAt":1750000000004,"subscriptionType":"ticket.deletion","objectId":77},
            {"eventId":6,"occurredAt":1750000000005,"subscriptionType":"contact.creation","objectId":9}
        ]"#).unwrap();
        let signals: Vec<_> = events.iter().map(CrmEvent::signal).collect();
        assert_eq!(
            signals,
            [
                Some(TicketSignal::Reply {
                    text: "Hello!".into()
                }),
                None,
                Some(TicketSignal::Stage { stage: "4".into() }),
                None,
                Some(TicketSignal::Deleted),
                None
            ]
        );
        assert_eq!(events[0].key(), "1750000000000#77#1");
        assert!(parse_events(b"{\"not\":\"a list\"}").is_err());
    }

    #[test]
    fn only_the_named_characters_are_decoded() {
        assert_eq!(
            decode_uri("https://h/p?a=%3a%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%"),
            "https://h/p?a=:/?@!$'()*,;&b=%20%"
        );
    }
}
