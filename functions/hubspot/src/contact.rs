//! Finding the customer's contact: by Baton's unique WhatsApp id property first (a direct read,
//! no search lag), then by phone through search (E.164 on `phone`/`mobilephone`, the national
//! number on HubSpot's calculated searchable properties), every hit re-checked here so a number
//! from another country never matches; none → create, and a 409 → the existing contact.

use baton_shared::domain::Customer;
use baton_shared::media_keys::url_component;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api::{self, FilterGroup, Object, Properties, Search};
use crate::client::{HubspotClient, json_id};
use crate::error::HubspotError;
use crate::exactly_once::is_unique_violation;
use crate::portal::CONTACT_WHATSAPP_ID;

/// Who to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// What goes into `baton_whatsapp_id`: the E.164 number, or the business-scoped user id.
    pub whatsapp_id: String,
    pub phone: Option<Phone>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    pub e164: String,
    /// The national significant number, which HubSpot's calculated search properties hold.
    pub national: String,
    /// The number's region (ISO 3166), to read numbers typed without a country code.
    pub region: Option<phonenumber::country::Id>,
}

impl Phone {
    /// Parses a WhatsApp id (digits with the country code, no `+`) or any E.164 text.
    pub fn parse(text: &str) -> Option<Self> {
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        if digits.len() < 6 {
            return None;
        }
        let n = phonenumber::parse(None, format!("+{digits}")).ok()?;
        Some(Self {
            e164: n.format().mode(phonenumber::Mode::E164).to_string(),
            national: n.national().to_string(),
            region: n.country().id(),
        })
    }

    /// Whether `typed` (as a person typed it into HubSpot) is this number. Numbers without a
    /// country code are read in this number's region.
    pub fn matches(&self, typed: &str) -> bool {
        let typed = typed.trim();
        if typed.is_empty() {
            return false;
        }
        // With an international prefix (`+` or `00`) the country code is in the text; without
        // one, the number is read in this number's region.
        let parsed = match typed.strip_prefix('+').or_else(|| typed.strip_prefix("00")) {
            Some(international) => {
                let digits: String = international.chars().filter(char::is_ascii_digit).collect();
                phonenumber::parse(None, format!("+{digits}")).ok()
            }
            None => phonenumber::parse(self.region, typed).ok(),
        };
        parsed.is_some_and(|n| n.format().mode(phonenumber::Mode::E164).to_string() == self.e164)
    }
}

impl Identity {
    /// The customer's identity, or `None` when WhatsApp gave neither number nor user id.
    pub fn of(customer: &Customer) -> Option<Self> {
        let phone = customer.wa_id.as_deref().and_then(Phone::parse);
        let whatsapp_id = match (&phone, &customer.wa_id, &customer.user_id) {
            (Some(p), _, _) => p.e164.clone(),
            (None, Some(wa), _) if !wa.trim().is_empty() => format!("+{}", wa.trim()),
            (None, _, Some(user)) if !user.trim().is_empty() => user.trim().to_owned(),
            _ => return None,
        };
        let name = customer
            .profile_name
            .as_deref()
            .or(customer.username.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let (first_name, last_name) = match name {
            None => (None, None),
            Some(n) => match n.split_once(char::is_whitespace) {
                Some((first, rest)) if !rest.trim().is_empty() => {
                    (Some(first.to_owned()), Some(rest.trim().to_owned()))
                }
                _ => (Some(n.to_owned()), None),
            },
        };
        Some(Self {
            whatsapp_id,
            phone,
            first_name,
            last_name,
        })
    }
}

/// How the contact was found.
pub struct Found {
    pub id: String,
    pub how: &'static str,
}

/// Reads the contact holding `whatsapp_id` in Baton's unique property.
pub async fn by_whatsapp_id(
    client: &HubspotClient,
    whatsapp_id: &str,
    deadline: Instant,
) -> Result<Option<String>, HubspotError> {
    let call = api::read_by_unique(
        "contact",
        Object::Contacts,
        &url_component(whatsapp_id),
        CONTACT_WHATSAPP_ID,
        &[],
    );
    client.find_by_unique(call, deadline).await
}

/// Searches contacts by phone and keeps the hits whose number really is this one; the oldest
/// wins when several do.
pub async fn by_phone(
    client: &HubspotClient,
    phone: &Phone,
    deadline: Instant,
) -> Result<Option<(String, bool)>, HubspotError> {
    let search = Search::oldest_first(
        vec![
            FilterGroup::equals("hs_searchable_calculated_phone_number", &phone.national),
            FilterGroup::equals("hs_searchable_calculated_mobile_number", &phone.national),
            FilterGroup::equals("phone", &phone.e164),
            FilterGroup::equals("mobilephone", &phone.e164),
        ],
        &["phone", "mobilephone", "createdate", CONTACT_WHATSAPP_ID],
        100,
    );
    let hits = client
        .results(&api::search("contact", Object::Contacts, &search), deadline)
        .await?;
    let mut matching: Vec<(String, String, bool)> = hits
        .iter()
        .filter_map(|hit| {
            let prop = |k: &str| {
                hit.pointer(&format!("/properties/{k}"))
                    .and_then(Value::as_str)
            };
            let number_matches = ["phone", "mobilephone"]
                .iter()
                .any(|k| prop(k).is_some_and(|v| phone.matches(v)));
            if !number_matches {
                return None;
            }
            let id = json_id(hit.get("id"))?;
            let created = prop("createdate").unwrap_or_default().to_owned();
            let has_whatsapp_id = prop(CONTACT_WHATSAPP_ID).is_some_and(|v| !v.is_empty());
            Some((created, id, has_whatsapp_id))
        })
        .collect();
    let dropped = hits.len() - matching.len();
    if dropped > 0 {
        tracing::info!(
            dropped,
            "search hits whose number is not the customer's were ignored"
        );
    }
    matching.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.len().cmp(&b.1.len()))
            .then(a.1.cmp(&b.1))
    });
    if matching.len() > 1 {
        tracing::info!(
            candidates = matching.len(),
            chosen = %matching[0].1,
            "several contacts have the customer's number; the oldest is used"
        );
    }
    Ok(matching.into_iter().next().map(|(_, id, has)| (id, has)))
}

/// Creates the contact, with the portal's `defaults` for properties Baton does not set; a
/// conflict on the unique WhatsApp id (another handoff created it a moment ago) yields the
/// existing contact.
pub async fn create(
    client: &HubspotClient,
    who: &Identity,
    defaults: &Properties,
    deadline: Instant,
) -> Result<Found, HubspotError> {
    let mut properties = defaults.clone();
    properties.insert(CONTACT_WHATSAPP_ID.into(), json!(who.whatsapp_id));
    if let Some(p) = &who.phone {
        properties.insert("phone".into(), json!(p.e164));
    }
    if let Some(f) = &who.first_name {
        properties.insert("firstname".into(), json!(f));
    }
    if let Some(l) = &who.last_name {
        properties.insert("lastname".into(), json!(l));
    }
    let call = api::create("contact", Object::Contacts, &properties, &[]);
    let answer = match client.call(&call, deadline).await {
        Ok(a) => a,
        // The create may have happened: the unique property tells.
        Err(HubspotError::Uncertain { .. }) => {
            return match by_whatsapp_id(client, &who.whatsapp_id, deadline).await? {
                Some(id) => Ok(Found {
                    id,
                    how: "found_after_timeout",
                }),
                None => Err(HubspotError::Unavailable {
                    step: "contact",
                    status: None,
                    message: "creating the contact timed out and it does not exist".into(),
                    correlation_id: None,
                }),
            };
        }
        Err(e) => return Err(e),
    };
    if answer.is_success() {
        return answer
            .id()
            .map(|id| Found { id, how: "created" })
            .ok_or_else(|| answer.rejected("contact"));
    }
    if answer.status == 409 || is_unique_violation(&answer.body) {
        if let Some(id) = existing_id(&answer.body) {
            return Ok(Found {
                id,
                how: "conflict",
            });
        }
        if let Some(id) = by_whatsapp_id(client, &who.whatsapp_id, deadline).await? {
            return Ok(Found {
                id,
                how: "conflict",
            });
        }
    }
    Err(answer.rejected("contact"))
}

/// The existing contact's id from a 409: `identityProfile.vid`, else "Existing ID: 123".
pub fn existing_id(body: &Value) -> Option<String> {
    if let Some(vid) = json_id(body.pointer("/identityProfile/vid")) {
        return Some(vid);
    }
    let message = body.get("message")?.as_str()?;
    let rest = &message[message.find("Existing ID:")? + "Existing ID:".len()..];
    let id: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!id.is_empty()).then_some(id)
}

/// Records the WhatsApp id on a contact found by search, so the next handoff reads it directly.
/// Failing here loses nothing: the search finds it again.
pub async fn remember(
    client: &HubspotClient,
    contact_id: &str,
    whatsapp_id: &str,
    deadline: Instant,
) {
    let mut properties = Properties::new();
    properties.insert(CONTACT_WHATSAPP_ID.into(), json!(whatsapp_id));
    let call = api::update("contact", Object::Contacts, contact_id, &properties);
    match client.call(&call, deadline).await {
        Ok(a) if a.is_success() => {}
        Ok(a) => tracing::info!(
            status = a.status,
            "the WhatsApp id could not be recorded on the contact"
        ),
        Err(e) => {
            tracing::info!(error = %e.log_summary(), "the WhatsApp id could not be recorded on the contact");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_as_e164_and_matched_across_formats() {
        let p = Phone::parse("34612345678").unwrap();
        assert_eq!(p.e164, "+34612345678");
        assert_eq!(p.national, "612345678");
        for typed in [
            "+34 612 34 56 78",
            "0034612345678",
            "612 345 678",
            "+34612345678",
        ] {
            assert!(p.matches(typed), "{typed}");
        }
        // The same national number in another country is another person.
        for typed in ["+33612345678", "+1 612 345 678", "", "hello"] {
            assert!(!p.matches(typed), "{typed}");
        }
        let us = Phone::parse("16505551234").unwrap();
        assert_eq!(us.national, "6505551234");
        assert!(us.matches("(650) 555-1234"));
        assert!(!us.matches("+44 650 555 1234"));
        // Italian numbers keep their leading zero.
        let it = Phone::parse("390612345678").unwrap();
        assert_eq!(it.national, "0612345678");
    }

    #[test]
    fn identities_prefer_the_number_then_the_user_id() {
        let c = Customer {
            wa_id: Some("34612345678".into()),
            profile_name: Some("María José García".into()),
            ..Default::default()
        };
        let who = Identity::of(&c).unwrap();
        assert_eq!(who.whatsapp_id, "+34612345678");
        assert_eq!(who.first_name.as_deref(), Some("María"));
        assert_eq!(who.last_name.as_deref(), Some("José García"));
        let c = Customer {
            user_id: Some("US.13491208655302741918".into()),
            username: Some("maria".into()),
            ..Default::default()
        };
        let who = Identity::of(&c).unwrap();
        assert_eq!(who.whatsapp_id, "US.13491208655302741918");
        assert!(who.phone.is_none());
        assert!(Identity::of(&Customer::default()).is_none());
    }

    #[test]
    fn existing_ids_come_from_either_conflict_format() {
        let old = json!({"status":"error","message":"Contact already exists. Existing ID: 12345","category":"CONFLICT"});
        assert_eq!(existing_id(&old).as_deref(), Some("12345"));
        let new = json!({"category":"OBJECT_ALREADY_EXISTS","identityProfile":{"vid":678},"message":"Contact already exists"});
        assert_eq!(existing_id(&new).as_deref(), Some("678"));
        assert_eq!(existing_id(&json!({"message":"other"})), None);
    }
}
