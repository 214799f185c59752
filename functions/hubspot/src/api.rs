//! Every HubSpot path and request body Baton uses, typed, in one place: a step asks for the
//! [`Call`] it needs (`api::create_note(…)`), the [`crate::client`] sends it. The two version
//! constants below are the only place an API version appears, and each call names the scope it
//! needs, so an error can say which one is missing.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::transport::{Bucket, Call, FileUpload, Payload, Retry};

/// HubSpot's date-versioned API Baton calls: records, search, batch reads, properties,
/// pipelines, files and account details. HubSpot's v1–v4 paths go unsupported in 2027.
pub const VERSION: &str = "2026-09";
/// Associations (one record's, and the labels) stay on the version HubSpot documents for them:
/// the 2026-09 association paths answer but are undocumented (December 2026).
pub const ASSOCIATIONS_VERSION: &str = "2026-03";

/// A record collection's path, e.g. `/crm/objects/2026-09/tickets`.
fn records(object: Object) -> String {
    format!("/crm/objects/{VERSION}/{}", object.as_str())
}

/// The OAuth scopes Baton's app declares, each with what it is for: the app's files
/// (`hubspot-app/`) and the doctor's checks come from this list, and every call below needs
/// one of them.
pub const SCOPES: &[(&str, &str)] = &[
    (
        "oauth",
        "reading the account's details (baton-local doctor)",
    ),
    (CONTACTS_READ, "reading and searching contacts"),
    (CONTACTS_WRITE, "creating contacts and notes"),
    (TICKETS, "tickets, pipelines and ticket properties"),
    (FILES_SCOPE, "uploading the customer's files"),
    (CONTACT_SCHEMAS, "creating Baton's contact property"),
    (TICKET_SCHEMAS, "creating Baton's ticket properties"),
];
const CONTACTS_READ: &str = "crm.objects.contacts.read";
const CONTACTS_WRITE: &str = "crm.objects.contacts.write";
const TICKETS: &str = "tickets";
const FILES_SCOPE: &str = "files";
const CONTACT_SCHEMAS: &str = "crm.schemas.contacts.write";
const TICKET_SCHEMAS: &str = "crm.schemas.tickets.write";

/// The scope reading (`write == false`) or writing records of `object` needs (HubSpot's specs,
/// `security`). Notes are authorised by the contacts scopes.
fn record_scope(object: Object, write: bool) -> &'static str {
    match (object, write) {
        (Object::Tickets, _) => TICKETS,
        (Object::Contacts | Object::Notes, false) => CONTACTS_READ,
        (Object::Contacts | Object::Notes, true) => CONTACTS_WRITE,
    }
}

/// A CRM object type Baton reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Contacts,
    Tickets,
    Notes,
}

impl Object {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Tickets => "tickets",
            Self::Notes => "notes",
        }
    }
}

/// A record's properties, by internal name: HubSpot's properties are the portal's own, so they
/// stay a map.
pub type Properties = Map<String, Value>;

/// An association made with a create: to record `to`, of HubSpot-defined type `type_id`.
#[derive(Debug, Clone, Serialize)]
pub struct Association {
    to: RecordId,
    types: [AssociationType; 1],
}

impl Association {
    pub fn new(to: &str, type_id: u32) -> Self {
        Self {
            to: RecordId { id: to.to_owned() },
            types: [AssociationType {
                category: "HUBSPOT_DEFINED",
                type_id,
            }],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct RecordId {
    id: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AssociationType {
    #[serde(rename = "associationCategory")]
    category: &'static str,
    #[serde(rename = "associationTypeId")]
    type_id: u32,
}

#[derive(Serialize)]
struct CreateRecord<'a> {
    properties: &'a Properties,
    associations: &'a [Association],
}

#[derive(Serialize)]
struct UpdateRecord<'a> {
    properties: &'a Properties,
}

/// Creates a record with its associations. A create: the caller finds out whether an answer
/// lost on the way means it exists ([`crate::exactly_once`]).
pub fn create(
    step: &'static str,
    object: Object,
    properties: &Properties,
    associations: &[Association],
) -> Call {
    Call::post(
        step,
        records(object),
        to_value(&CreateRecord {
            properties,
            associations,
        }),
    )
    .needs(record_scope(object, true))
    .create()
}

/// A note to create on a ticket (and the customer's contact).
pub struct NewNote<'a> {
    /// When it happened (unix milliseconds): HubSpot sorts the timeline by it.
    pub at_ms: i64,
    /// HTML.
    pub body: &'a str,
    /// HubSpot Files ids to attach.
    pub attachments: &'a [String],
    pub associations: Vec<Association>,
}

/// Creates a note (a create: see [`create`]).
pub fn create_note(step: &'static str, note: &NewNote<'_>) -> Call {
    let mut properties = Properties::new();
    properties.insert("hs_timestamp".into(), Value::String(timestamp(note.at_ms)));
    properties.insert("hs_note_body".into(), Value::String(note.body.to_owned()));
    if !note.attachments.is_empty() {
        // HubSpot takes several files as one `;`-joined value.
        properties.insert(
            "hs_attachment_ids".into(),
            Value::String(note.attachments.join(";")),
        );
    }
    create(step, Object::Notes, &properties, &note.associations)
}

/// A datetime property's value: RFC 3339 in UTC.
fn timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Sets some of a record's properties.
pub fn update(step: &'static str, object: Object, id: &str, properties: &Properties) -> Call {
    Call::patch(
        step,
        format!("{}/{id}", records(object)),
        to_value(&UpdateRecord { properties }),
    )
    .needs(record_scope(object, true))
}

/// Archives (deletes) a record.
pub fn archive(step: &'static str, object: Object, id: &str) -> Call {
    Call {
        method: http::Method::DELETE,
        ..Call::get(step, format!("{}/{id}", records(object))).needs(record_scope(object, true))
    }
}

/// Reads the record whose unique `property` holds `value` (already URL-safe) directly, with no
/// search lag, and the `properties` named (none: HubSpot's defaults). 404 when there is none.
pub fn read_by_unique(
    step: &'static str,
    object: Object,
    value: &str,
    property: &str,
    properties: &[&str],
) -> Call {
    let mut path = format!("{}/{value}?idProperty={property}", records(object));
    if !properties.is_empty() {
        path.push_str("&properties=");
        path.push_str(&properties.join(","));
    }
    Call::get(step, path).needs(record_scope(object, false))
}

/// Reads one record by its id, with the `properties` named.
pub fn read(step: &'static str, object: Object, id: &str, properties: &[&str]) -> Call {
    Call::get(
        step,
        format!(
            "{}/{id}?properties={}",
            records(object),
            properties.join(",")
        ),
    )
    .needs(record_scope(object, false))
}

/// One AND-group of a search: every filter must hold.
#[derive(Debug, Clone, Serialize)]
pub struct FilterGroup {
    filters: Vec<Filter>,
}

impl FilterGroup {
    /// `property` equal to `value`.
    pub fn equals(property: &str, value: &str) -> Self {
        Self {
            filters: vec![Filter {
                property_name: property.to_owned(),
                operator: "EQ",
                value: value.to_owned(),
            }],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    property_name: String,
    operator: &'static str,
    value: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Sort {
    property_name: String,
    direction: &'static str,
}

/// A contact search: any of `groups` matches (HubSpot ORs the groups), oldest first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Search {
    filter_groups: Vec<FilterGroup>,
    properties: Vec<String>,
    sorts: Vec<Sort>,
    limit: u32,
}

impl Search {
    pub fn oldest_first(groups: Vec<FilterGroup>, properties: &[&str], limit: u32) -> Self {
        Self {
            filter_groups: groups,
            properties: properties.iter().map(|p| (*p).to_owned()).collect(),
            sorts: vec![Sort {
                property_name: "createdate".into(),
                direction: "ASCENDING",
            }],
            limit,
        }
    }
}

/// Searches `object` (its own, stricter rate limit).
pub fn search(step: &'static str, object: Object, search: &Search) -> Call {
    Call::post(
        step,
        format!("{}/search", records(object)),
        to_value(search),
    )
    .needs(record_scope(object, false))
    .search()
}

/// The ids of the `to` records associated with a ticket.
pub fn ticket_associations(step: &'static str, ticket_id: &str, to: Object) -> Call {
    Call::get(
        step,
        format!(
            "/crm/objects/{ASSOCIATIONS_VERSION}/tickets/{ticket_id}/associations/{}?limit=500",
            to.as_str()
        ),
    )
    .needs(TICKETS)
}

#[derive(Serialize)]
struct BatchRead<'a> {
    properties: &'a [&'a str],
    inputs: Vec<RecordId>,
}

/// Reads up to 100 records of `object` by id, with the `properties` named. The answer's
/// `results` hold those found; 2026-09 lists the others under `errors` in the same 200.
pub fn batch_read(step: &'static str, object: Object, ids: &[String], properties: &[&str]) -> Call {
    let body = BatchRead {
        properties,
        inputs: ids.iter().map(|id| RecordId { id: id.clone() }).collect(),
    };
    Call::post(
        step,
        format!("{}/batch/read", records(object)),
        to_value(&body),
    )
    .needs(record_scope(object, false))
}

/// How an upload treats a file already in the folder.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UploadOptions {
    access: &'static str,
    overwrite: bool,
    duplicate_validation_strategy: &'static str,
    duplicate_validation_scope: &'static str,
}

/// A file to upload from the media bucket into HubSpot Files.
pub struct NewFile {
    pub objects: std::sync::Arc<dyn baton_shared::objects::ObjectStore>,
    /// The object's key in the bucket.
    pub key: String,
    pub file_name: String,
    pub content_type: String,
    pub folder_path: String,
}

/// Uploads a private file. The same name in the same folder returns the first file
/// (`RETURN_EXISTING`), so a repeated upload is safe to retry.
pub fn upload_file(step: &'static str, file: NewFile) -> Call {
    let options = UploadOptions {
        access: "PRIVATE",
        overwrite: false,
        duplicate_validation_strategy: "RETURN_EXISTING",
        duplicate_validation_scope: "EXACT_FOLDER",
    };
    Call {
        method: http::Method::POST,
        path: format!("/files/{VERSION}/files"),
        payload: Payload::File(FileUpload {
            objects: file.objects,
            key: file.key,
            file_name: file.file_name,
            content_type: file.content_type,
            folder_path: file.folder_path,
            options: to_value(&options).to_string(),
        }),
        bucket: Bucket::General,
        retry: Retry::Safe,
        scope: FILES_SCOPE,
        step,
    }
}

/// A property collection's path, e.g. `/crm/properties/2026-09/tickets`.
fn properties(object: Object) -> String {
    format!("/crm/properties/{VERSION}/{}", object.as_str())
}

/// The properties of `object`.
pub fn list_properties(step: &'static str, object: Object) -> Call {
    Call::get(step, properties(object)).needs(record_scope(object, false))
}

/// One option of an enumeration property: HubSpot's specs require all four fields.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyOption {
    pub label: &'static str,
    pub value: &'static str,
    pub display_order: i32,
    pub hidden: bool,
}

/// A custom property to create.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewProperty {
    pub name: &'static str,
    pub label: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub field_type: &'static str,
    pub group_name: &'static str,
    pub description: &'static str,
    pub has_unique_value: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<PropertyOption>,
}

/// Creates a custom property of `object`.
pub fn create_property(step: &'static str, object: Object, property: &NewProperty) -> Call {
    let scope = match object {
        Object::Tickets => TICKET_SCHEMAS,
        Object::Contacts | Object::Notes => CONTACT_SCHEMAS,
    };
    Call::post(step, properties(object), to_value(property)).needs(scope)
}

/// The portal's ticket pipelines and their stages.
pub fn ticket_pipelines(step: &'static str) -> Call {
    Call::get(step, format!("/crm/pipelines/{VERSION}/tickets")).needs(TICKETS)
}

/// The association types (and labels) from `from` records to `to` records.
pub fn association_labels(step: &'static str, from: Object, to: Object) -> Call {
    Call::get(
        step,
        format!(
            "/crm/associations/{ASSOCIATIONS_VERSION}/{}/{}/labels",
            from.as_str(),
            to.as_str()
        ),
    )
    .needs(CONTACTS_READ)
}

/// The account the token belongs to (`portalId`, `dataHostingLocation`): proves a token of
/// any kind works.
pub fn account_details(step: &'static str) -> Call {
    Call::get(step, format!("/account-info/{VERSION}/details")).needs("oauth")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenKey<'a> {
    token_key: &'a str,
}

/// A legacy private app's token, introspected (its app id and scopes). The one legacy call
/// Baton makes, and only from the doctor: HubSpot has no dated counterpart that takes a token
/// alone, and this path goes unsupported in September 2027, so its failure is never an error.
pub fn legacy_token_info(step: &'static str, token: &str) -> Call {
    Call::post(
        step,
        "/oauth/v2/private-apps/get/access-token-info",
        to_value(&TokenKey { token_key: token }),
    )
    .needs("oauth")
}

/// The bodies above are plain data: serialising them cannot fail.
fn to_value<T: Serialize>(body: &T) -> Value {
    serde_json::to_value(body).expect("request bodies are plain data")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_have_hubspots_shape() {
        let mut properties = Properties::new();
        properties.insert("subject".into(), json!("Help"));
        let call = create(
            "ticket",
            Object::Tickets,
            &properties,
            &[Association::new("51", 16)],
        );
        assert_eq!(call.path, "/crm/objects/2026-09/tickets");
        assert_eq!(call.scope, "tickets");
        assert_eq!(call.retry, Retry::Create);
        let Payload::Json(body) = &call.payload else {
            panic!("a JSON body")
        };
        assert_eq!(
            body,
            &json!({"properties": {"subject": "Help"}, "associations": [
                {"to": {"id": "51"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}]}
            ]})
        );
        let search = search(
            "contact",
            Object::Contacts,
            &Search::oldest_first(vec![FilterGroup::equals("phone", "+1")], &["phone"], 100),
        );
        assert_eq!(search.bucket, Bucket::Search);
        assert_eq!(search.scope, "crm.objects.contacts.read");
        let Payload::Json(body) = &search.payload else {
            panic!("a JSON body")
        };
        assert_eq!(
            body,
            &json!({"filterGroups": [{"filters": [{"propertyName": "phone", "operator": "EQ", "value": "+1"}]}],
                    "properties": ["phone"], "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}], "limit": 100})
        );
        assert_eq!(
            read_by_unique(
                "t",
                Object::Tickets,
                "h-1",
                "baton_handoff_id",
                &["subject"]
            )
            .path,
            "/crm/objects/2026-09/tickets/h-1?idProperty=baton_handoff_id&properties=subject"
        );
        assert_eq!(
            ticket_associations("n", "7", Object::Notes).path,
            "/crm/objects/2026-03/tickets/7/associations/notes?limit=500"
        );
        assert_eq!(
            association_labels("l", Object::Notes, Object::Tickets).path,
            "/crm/associations/2026-03/notes/tickets/labels"
        );
    }

    #[test]
    fn every_call_needs_a_scope_the_app_declares() {
        let props = Properties::new();
        let declared: Vec<&str> = SCOPES.iter().map(|(s, _)| *s).collect();
        let mut calls = vec![
            list_properties("s", Object::Contacts),
            ticket_pipelines("s"),
            account_details("s"),
            legacy_token_info("s", "t"),
            ticket_associations("s", "1", Object::Contacts),
            association_labels("s", Object::Tickets, Object::Contacts),
        ];
        for object in [Object::Contacts, Object::Tickets, Object::Notes] {
            calls.extend([
                create("s", object, &props, &[]),
                update("s", object, "1", &props),
                archive("s", object, "1"),
                read_by_unique("s", object, "v", "p", &[]),
                read("s", object, "1", &["p"]),
                search("s", object, &Search::oldest_first(vec![], &[], 1)),
                batch_read("s", object, &[], &[]),
                create_property(
                    "s",
                    object,
                    &NewProperty {
                        name: "n",
                        label: "l",
                        kind: "string",
                        field_type: "text",
                        group_name: "g",
                        description: "",
                        has_unique_value: false,
                        options: vec![],
                    },
                ),
            ]);
        }
        for call in calls {
            assert!(
                declared.contains(&call.scope),
                "{} {} needs `{}`, which the app does not declare",
                call.method,
                call.path,
                call.scope
            );
        }
    }
}
