//! Baton's HubSpot app as code: a developer-platform project (`hubspot-app/`) holding a privately
//! distributed, static-auth app and its webhooks. The app's scopes are the ones the HubSpot API
//! module's calls need ([`api::SCOPES`]) and its subscriptions the events the webhook reads
//! ([`SUBSCRIPTIONS`]), so the project cannot drift from the code: `baton-local hubspot-app`
//! writes it, and a test compares the committed files with what it writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_hubspot::api;
use baton_hubspot::portal::{Portal, TICKET_REPLY};
use baton_hubspot::{HubspotClient, HubspotConfig};
use baton_shared::config::{self, PUBLIC_BASE_URL, Source};
use baton_webhook::hubspot_webhook::SUBSCRIPTIONS;
use serde_json::{Value, json};

/// The portal the app is installed in (HubSpot's "Hub ID").
pub const ACCOUNT_ID: &str = "HUBSPOT_ACCOUNT_ID";
/// The address HubSpot shows as the app's support contact.
pub const SUPPORT_EMAIL: &str = "HUBSPOT_APP_SUPPORT_EMAIL";
/// HubSpot's developer platform version the project is built on (the current one).
pub const PLATFORM_VERSION: &str = "2026.09";
/// Never change the project's name or the uids: HubSpot ties the installed app to them.
const PROJECT_NAME: &str = "baton";
const APP_UID: &str = "baton_app";
const WEBHOOKS_UID: &str = "baton_webhooks";
/// The profile `hs project upload --profile prod` applies (git-ignored: it names the stack).
pub const PROFILE: &str = "src/hsprofile.prod.json";
/// As many concurrent deliveries as the webhook function takes without queueing.
const MAX_CONCURRENT_REQUESTS: u32 = 10;

/// `baton-local hubspot-app`'s arguments.
#[derive(Debug, Clone)]
pub struct Options {
    /// The project's directory.
    pub dir: PathBuf,
    /// The portal's id; else `HUBSPOT_ACCOUNT_ID`.
    pub account: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("hubspot-app"),
            account: None,
        }
    }
}

/// The project's files, by path in the project, as JSON. `reply_active`: whether the reply
/// property's subscription is on (it can only be once the property exists in the portal).
pub fn project_files(reply_active: bool) -> Vec<(&'static str, Value)> {
    let scopes: Vec<&str> = api::SCOPES.iter().map(|(s, _)| *s).collect();
    let subscriptions: Vec<Value> = SUBSCRIPTIONS
        .iter()
        .map(|s| {
            let active = reply_active || s.property != Some(TICKET_REPLY);
            match s.property {
                Some(property) => {
                    json!({"subscriptionType": s.kind, "propertyName": property, "active": active})
                }
                None => json!({"subscriptionType": s.kind, "active": active}),
            }
        })
        .collect();
    vec![
        (
            "hsproject.json",
            json!({"name": PROJECT_NAME, "srcDir": "src", "platformVersion": PLATFORM_VERSION}),
        ),
        (
            "src/app/app-hsmeta.json",
            json!({
                "uid": APP_UID,
                "type": "app",
                "config": {
                    "name": "Baton",
                    "description": "WhatsApp handoff: creates contacts, tickets and notes; receives ticket updates.",
                    "distribution": "private",
                    "auth": {
                        "type": "static",
                        "requiredScopes": scopes,
                        "optionalScopes": [],
                        "conditionallyRequiredScopes": []
                    },
                    "permittedUrls": {"fetch": [], "iframe": [], "img": []},
                    "support": {"supportEmail": "${SUPPORT_EMAIL}", "documentationUrl": "${DOCS_URL}"}
                }
            }),
        ),
        (
            "src/app/webhooks/webhooks-hsmeta.json",
            json!({
                "uid": WEBHOOKS_UID,
                "type": "webhooks",
                "config": {
                    "settings": {"targetUrl": "${BATON_WEBHOOK_URL}", "maxConcurrentRequests": MAX_CONCURRENT_REQUESTS},
                    "subscriptions": {"legacyCrmObjects": subscriptions}
                }
            }),
        ),
    ]
}

/// A file's text: JSON as HubSpot's templates lay it out, two spaces, a final newline.
pub fn file_text(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("plain JSON");
    text.push('\n');
    text
}

/// The profile: the account and the values the project's `${…}` stand for.
pub fn profile(account: u64, events_url: &str, support_email: &str) -> Value {
    json!({
        "accountId": account,
        "variables": {
            "BATON_WEBHOOK_URL": events_url,
            "SUPPORT_EMAIL": support_email,
            "DOCS_URL": env!("CARGO_PKG_REPOSITORY")
        }
    })
}

/// Writes the project and its profile into `opts.dir` and says what to run next. With the
/// HubSpot token at hand (the stack's secret) it first creates Baton's properties, so the
/// reply subscription can be on; without it the subscription stays off until a second run.
pub async fn write(src: &(dyn Source + Sync), opts: &Options) -> Result<String, String> {
    let base = config::optional(src, PUBLIC_BASE_URL)
        .ok_or("no events URL: give --stack NAME (its WebhookUrl output) or set PUBLIC_BASE_URL")?;
    let events_url = format!("{}/hubspot/events", base.trim_end_matches('/'));
    if !events_url.starts_with("https://") {
        return Err(format!(
            "{events_url} is not HTTPS, and HubSpot only calls HTTPS URLs: deploy the stack, or put a tunnel in front of baton-local and set PUBLIC_BASE_URL"
        ));
    }
    let account = match opts.account {
        Some(id) => id,
        None => config::optional(src, ACCOUNT_ID)
            .ok_or(format!("give --account PORTAL_ID or set {ACCOUNT_ID} (HubSpot: the account menu > Account & billing, \"Hub ID\")"))?
            .trim()
            .parse()
            .map_err(|_| format!("{ACCOUNT_ID} must be the portal's number"))?,
    };
    let support_email = config::optional(src, SUPPORT_EMAIL).ok_or(format!(
        "set {SUPPORT_EMAIL} to the address HubSpot shows as the app's support contact"
    ))?;
    let properties = create_properties(src).await?;
    let reply_active = properties.is_some();
    for (path, value) in project_files(reply_active) {
        write_file(&opts.dir, path, &file_text(&value))?;
    }
    write_file(
        &opts.dir,
        PROFILE,
        &file_text(&profile(account, &events_url, &support_email)),
    )?;
    let dir = opts.dir.display();
    let mut out = format!(
        "Wrote Baton's HubSpot app into {dir} (platform {PLATFORM_VERSION}, {} scopes), its events going to {events_url}.\n\n\
         Upload and install it (Node 20 or later):\n\
         \x20 npm install -g @hubspot/cli@latest\n\
         \x20 hs account auth --account {account} --personal-access-key <your personal access key from Development > Keys>\n\
         \x20 cd {dir}\n\
         \x20 hs project validate --profile prod\n\
         \x20 hs project upload --profile prod\n\
         \x20 hs project app-install-status --profile prod\n\
         Then in HubSpot: Development > Projects > {PROJECT_NAME} > the app > Distribution > Install now (tick \"unverified app\") > Connect app.\n\
         Copy the access token (Distribution > Show) into HUBSPOT_ACCESS_TOKEN and the client secret (Auth) into HUBSPOT_APP_SECRET, in the stack's secret, then run baton-local doctor --stack NAME.\n",
        api::SCOPES.len()
    );
    match properties {
        Some(what) => out.push_str(&format!(
            "\n{what}, so the subscription to {TICKET_REPLY} is on: a project already installed needs only the upload.\n"
        )),
        None => out.push_str(&format!(
            "\nThe subscription to {TICKET_REPLY} is off for now: HubSpot may refuse a subscription to a property the portal does not have yet.\n\
             Once the app is installed and its token is in the stack's secret, run this command again: it creates Baton's properties and turns the subscription on; then upload again.\n"
        )),
    }
    Ok(out)
}

/// Creates Baton's properties with the HubSpot token, when there is one; what was done.
async fn create_properties(src: &(dyn Source + Sync)) -> Result<Option<String>, String> {
    let cfg = HubspotConfig::from_source(&crate::doctor::HubspotSettings(src))
        .map_err(|e| e.to_string())?;
    let Some(client) = HubspotClient::from_config(&cfg).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    Portal::discover(&client, &cfg, deadline)
        .await
        .map_err(|e| {
            format!("Baton's properties could not be created with HUBSPOT_ACCESS_TOKEN: {e}")
        })?;
    Ok(Some("Baton's properties exist in the portal".to_owned()))
}

fn write_file(dir: &Path, path: &str, text: &str) -> Result<(), String> {
    let file = dir.join(path);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The project committed in `hubspot-app/` is what the code writes: the scopes every call
    /// needs and the events the webhook reads, nothing more.
    #[test]
    fn the_committed_app_files_agree_with_the_code() {
        let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hubspot-app");
        for (path, value) in project_files(true) {
            let committed = std::fs::read_to_string(project.join(path))
                .unwrap_or_else(|e| panic!("hubspot-app/{path}: {e}"));
            assert_eq!(
                committed,
                file_text(&value),
                "hubspot-app/{path} differs from what baton-local hubspot-app writes"
            );
        }
        let ignored = std::fs::read_to_string(project.join(".gitignore")).unwrap();
        assert!(ignored.lines().any(|l| l == "src/hsprofile.*.json"));
    }

    #[test]
    fn the_app_declares_exactly_baton_s_scopes_and_subscriptions() {
        let files = project_files(false);
        let app = &files[1].1["config"]["auth"];
        let scopes: Vec<&str> = app["requiredScopes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let wanted: Vec<&str> = api::SCOPES.iter().map(|(s, _)| *s).collect();
        assert_eq!(scopes, wanted);
        let subs = files[2].1["config"]["subscriptions"]["legacyCrmObjects"]
            .as_array()
            .unwrap();
        assert_eq!(subs.len(), SUBSCRIPTIONS.len());
        for (sub, declared) in subs.iter().zip(SUBSCRIPTIONS) {
            assert_eq!(sub["subscriptionType"], declared.kind);
            assert_eq!(sub["propertyName"].as_str(), declared.property);
            assert_eq!(
                sub["active"],
                declared.property != Some(TICKET_REPLY),
                "only the reply property waits for the property to exist"
            );
        }
    }
}
