//! `baton-local doctor`: checks a set-up before the first handoff, each with ✓, ! (a warning) or
//! ✗ and, when it fails, a one-line fix. It reads what the functions read: the environment, or
//! with `--stack NAME` the deployed stack's outputs, parameters and secret. It never prints a
//! secret: anything shaped like a token is masked wherever it appears.

use std::collections::HashMap;
use std::time::Duration;

use baton_hubspot::api::{self, Object, SCOPES};
use baton_hubspot::config::Credential;
use baton_hubspot::portal;
use baton_hubspot::{HubspotClient, HubspotConfig, HubspotError};
use baton_shared::config::{
    self, ACCESS_TOKEN, APP_SECRET, HUBSPOT_APP_SECRET, MEDIA_BUCKET, PUBLIC_BASE_URL, Source,
    TABLE_NAME, VERIFY_TOKEN,
};
use baton_shared::whatsapp::graph::GraphConfig;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::time::Instant;

/// The business number's id (WhatsApp Manager > Phone numbers), read by the doctor and the smoke
/// test; the functions take it from each webhook.
pub const PHONE_NUMBER_ID: &str = "WHATSAPP_PHONE_NUMBER_ID";
/// The dead-letter queues (the stack's outputs; settable for a stack checked by hand).
pub const HUBSPOT_QUEUE: &str = "HUBSPOT_FAILURES_QUEUE_URL";
pub const HANDOFF_QUEUE: &str = "HANDOFF_FAILURES_QUEUE_URL";
pub const MEDIA_QUEUE: &str = "MEDIA_COPY_FAILURES_QUEUE_URL";
/// The stack's `FrontDoor` parameter, when the doctor reads a stack.
pub const FRONT_DOOR: &str = "BATON_FRONT_DOOR";
/// The WhatsApp Business Account Baton's Meta app must be subscribed to (WhatsApp Manager >
/// Account tools, or `entry[].id` in any webhook).
pub const BUSINESS_ACCOUNT_ID: &str = "WHATSAPP_BUSINESS_ACCOUNT_ID";

/// What the doctor may change.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Subscribe Baton's Meta app to the WhatsApp Business Account when it is not.
    pub fix: bool,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    /// Passed, but worth a look (what to look at is in `fix`).
    pub warning: bool,
    pub what: String,
    /// What to do about it (failures and warnings).
    pub fix: String,
}

impl Finding {
    pub fn pass(what: impl Into<String>) -> Self {
        Self {
            ok: true,
            warning: false,
            what: what.into(),
            fix: String::new(),
        }
    }

    pub fn warn(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            ok: true,
            warning: true,
            what: what.into(),
            fix: fix.into(),
        }
    }

    pub fn fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            ok: false,
            warning: false,
            what: what.into(),
            fix: fix.into(),
        }
    }
}

/// Every finding, in the order checked.
#[derive(Debug, Default, Clone)]
pub struct Report(pub Vec<Finding>);

impl Report {
    pub fn passed(&self) -> bool {
        self.0.iter().all(|f| f.ok)
    }

    /// The findings as text, with anything shaped like a token masked.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.0 {
            if f.warning {
                out.push_str(&format!("! {}\n    note: {}\n", f.what, f.fix));
            } else if f.ok {
                out.push_str(&format!("✓ {}\n", f.what));
            } else {
                out.push_str(&format!("✗ {}\n    fix: {}\n", f.what, f.fix));
            }
        }
        let failed = self.0.iter().filter(|f| !f.ok).count();
        out.push_str(&match failed {
            0 => format!("\nAll {} checks passed.\n", self.0.len()),
            n => format!("\n{n} of {} checks failed.\n", self.0.len()),
        });
        mask_tokens(&out)
    }

    fn push(&mut self, f: Finding) {
        self.0.push(f);
    }
}

/// Masks every word shaped like a credential: a known token prefix (HubSpot's `pat-`, Meta's
/// `EAA`) or 32 and more letters and digits mixed. A token pasted into the wrong setting is
/// then not printed back, whichever message quotes it.
pub fn mask_tokens(text: &str) -> String {
    const PREFIXES: &[&str] = &["pat-", "EAA", "sk-", "xox"];
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let shaped = (word.len() >= 12 && PREFIXES.iter().any(|p| word.starts_with(p)))
            || (word.len() >= 32
                && word.chars().any(|c| c.is_ascii_alphabetic())
                && word.chars().any(|c| c.is_ascii_digit()));
        if shaped {
            out.push_str(&word[..4]);
            out.push_str("…(masked)");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Settings given as a map (the stack's), falling back to another source (the environment).
pub struct Layered<'a> {
    pub first: HashMap<String, String>,
    pub then: &'a (dyn Source + Sync),
}

impl Source for Layered<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.first
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
            .or_else(|| self.then.get(name))
    }
}

/// The HubSpot settings alone: the session links' key is the functions' business, not the
/// checks' (the stack keeps it in a secret of its own).
pub(crate) struct HubspotSettings<'a>(pub &'a (dyn Source + Sync));

impl Source for HubspotSettings<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (name != PUBLIC_BASE_URL)
            .then(|| self.0.get(name))
            .flatten()
    }
}

pub(crate) fn hubspot_config(src: &(dyn Source + Sync)) -> Result<HubspotConfig, String> {
    HubspotConfig::from_source(&HubspotSettings(src)).map_err(|e| e.to_string())
}

/// What a deployed stack tells: its outputs and parameters as the settings the functions get,
/// and the secret's values.
pub async fn stack_settings(
    aws: &aws_config::SdkConfig,
    stack: &str,
) -> Result<HashMap<String, String>, String> {
    let cf = aws_sdk_cloudformation::Client::new(aws);
    let out = cf
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot describe stack {stack}: {}",
                aws_sdk_cloudformation::error::DisplayErrorContext(&e)
            )
        })?;
    let s = out
        .stacks()
        .first()
        .ok_or_else(|| format!("no stack {stack}"))?;
    let mut settings = HashMap::new();
    for o in s.outputs() {
        let (Some(k), Some(v)) = (o.output_key(), o.output_value()) else {
            continue;
        };
        let name = match k {
            "WebhookUrl" => {
                settings.insert(
                    PUBLIC_BASE_URL.to_owned(),
                    v.trim_end_matches("/webhook").to_owned(),
                );
                continue;
            }
            "TableName" => TABLE_NAME,
            "MediaBucketName" => MEDIA_BUCKET,
            "HubspotFailuresQueueUrl" => HUBSPOT_QUEUE,
            "HandoffFailuresQueueUrl" => HANDOFF_QUEUE,
            "MediaCopyFailuresQueueUrl" => MEDIA_QUEUE,
            "SecretArn" => config::SECRET_ARN,
            _ => continue,
        };
        settings.insert(name.to_owned(), v.to_owned());
    }
    for p in s.parameters() {
        let (Some(k), Some(v)) = (p.parameter_key(), p.parameter_value()) else {
            continue;
        };
        let name = match k {
            "HubspotTicketPipeline" => baton_hubspot::config::PIPELINE,
            "HubspotTicketStage" => baton_hubspot::config::STAGE,
            "HubspotCredential" => baton_hubspot::config::CREDENTIAL,
            "HubspotTicketDefaults" => baton_hubspot::config::TICKET_DEFAULTS,
            "HubspotContactDefaults" => baton_hubspot::config::CONTACT_DEFAULTS,
            "GraphApiVersion" => config::GRAPH_API_VERSION,
            "FrontDoor" => FRONT_DOOR,
            _ => continue,
        };
        settings.insert(name.to_owned(), v.to_owned());
    }
    if let Some(arn) = settings.get(config::SECRET_ARN).cloned() {
        let client = aws_sdk_secretsmanager::Client::new(aws);
        let secret = config::read_secret(&client, &arn)
            .await
            .map_err(|e| e.to_string())?;
        settings.extend(secret);
    }
    Ok(settings)
}

/// Runs every check. `aws` is given when the table, bucket and queues are to be checked.
pub async fn run(
    src: &(dyn Source + Sync),
    aws: Option<&aws_config::SdkConfig>,
    opts: Options,
) -> Report {
    let mut report = Report::default();
    let http = match baton_shared::http::client(
        "the doctor",
        baton_shared::http::Timeouts::call(Duration::from_secs(15)),
    ) {
        Ok(h) => h,
        Err(e) => {
            report.push(Finding::fail(e.to_string(), "this is a bug: report it"));
            return report;
        }
    };
    meta_secrets(src, &mut report);
    whatsapp(src, &http, &mut report).await;
    business_account(src, &http, opts, &mut report).await;
    let credential = hubspot(src, &mut report).await;
    front_door(src, &mut report);
    handshake(src, &http, &mut report).await;
    if let Some(credential) = credential {
        hubspot_events(src, &http, credential, &mut report).await;
    }
    if let Some(aws) = aws {
        storage(src, aws, &mut report).await;
    }
    report
}

fn meta_secrets(src: &dyn Source, report: &mut Report) {
    let app = config::optional(src, APP_SECRET);
    report.push(match app.as_deref() {
        None => Finding::fail(
            "WHATSAPP_APP_SECRET is not set",
            "copy the App secret from Meta's App Dashboard > App settings > Basic into it (the stack's secret on AWS)",
        ),
        Some(config::APP_SECRET_PLACEHOLDER) => Finding::fail(
            "WHATSAPP_APP_SECRET is still the template's placeholder",
            "put the App secret from Meta's App Dashboard > App settings > Basic into the stack's secret",
        ),
        Some(list) => Finding::pass(format!(
            "WHATSAPP_APP_SECRET is set ({} secret(s))",
            list.split(',').filter(|s| !s.trim().is_empty()).count()
        )),
    });
    report.push(match config::optional(src, VERIFY_TOKEN) {
        None => Finding::fail(
            "WHATSAPP_VERIFY_TOKEN is not set",
            "set it to the Verify token you type into Meta's webhook configuration (the stack generates one)",
        ),
        Some(_) => Finding::pass("WHATSAPP_VERIFY_TOKEN is set"),
    });
}

async fn whatsapp(src: &dyn Source, http: &reqwest::Client, report: &mut Report) {
    let graph = match config::graph_config(src) {
        Ok(g) => g,
        Err(e) => {
            report.push(Finding::fail(e.to_string(), "fix that setting"));
            return;
        }
    };
    let Some(token) = graph.token.clone() else {
        report.push(Finding::fail(
            format!("{ACCESS_TOKEN} is not set"),
            "create a System User token with whatsapp_business_messaging in Meta Business Settings and put it in",
        ));
        return;
    };
    let Some(number) = config::optional(src, PHONE_NUMBER_ID) else {
        report.push(Finding::fail(
            format!("{PHONE_NUMBER_ID} is not set, so the token cannot be tried on your number"),
            "set it to the business number's id (WhatsApp Manager > Phone numbers, or metadata.phone_number_id in any webhook)",
        ));
        return;
    };
    let url = format!(
        "{}/{}/{number}?fields=display_phone_number,verified_name",
        graph.base_url, graph.version
    );
    let answer = http
        .get(&url)
        .bearer_auth(token.expose_secret())
        .send()
        .await;
    report.push(match answer {
        Err(e) => Finding::fail(
            format!("the Graph API could not be reached: {e}"),
            "check the network (and GRAPH_API_BASE_URL if you set it)",
        ),
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status == 200 {
                Finding::pass(format!(
                    "the WhatsApp token reads business number {} ({})",
                    body["display_phone_number"].as_str().unwrap_or("?"),
                    body["verified_name"].as_str().unwrap_or("no verified name")
                ))
            } else {
                let code = body["error"]["code"].as_i64().unwrap_or_default();
                let message = body["error"]["message"].as_str().unwrap_or("no message");
                match code {
                    190 => Finding::fail(
                        format!("WhatsApp refused {ACCESS_TOKEN} (error 190: {message})"),
                        "the token is invalid or expired: create a new System User token with whatsapp_business_messaging",
                    ),
                    _ => Finding::fail(
                        format!("the WhatsApp token cannot read business number {number} (HTTP {status}, error {code}: {message})"),
                        format!("check {PHONE_NUMBER_ID} and that the token's System User has the WhatsApp Business Account assigned"),
                    ),
                }
            }
        }
    });
}

/// Where each kind of HubSpot credential is fixed.
struct CredentialFixes {
    token: &'static str,
    scopes: &'static str,
}

fn fixes(credential: Credential) -> CredentialFixes {
    match credential {
        Credential::App => CredentialFixes {
            token: "copy the app's access token again (HubSpot > Development > Projects > baton > app > Distribution > Show); rotating it replaces the old one",
            scopes: "run baton-local hubspot-app to write Baton's scopes into hubspot-app/, upload the project (hs project upload) and reinstall the app (Distribution > Reinstall URL)",
        },
        Credential::PrivateApp => CredentialFixes {
            token: "copy the private app's access token again (Auth tab); a rotated or deleted app's token stops working",
            scopes: "add them in the private app's Scopes tab, then copy its token again",
        },
        Credential::ServiceKey => CredentialFixes {
            token: "copy the service key again (HubSpot > Development > Keys > Service keys); rotating it replaces the old one",
            scopes: "give the service key these scopes (Development > Keys > Service keys > Edit)",
        },
    }
}

/// The HubSpot checks: the credential's kind, the token (account details), its scopes (token
/// info where HubSpot gives it, else one read per scope), the pipeline and Baton's properties.
/// Returns the credential's kind when the token works.
async fn hubspot(src: &(dyn Source + Sync), report: &mut Report) -> Option<Credential> {
    let cfg = match hubspot_config(src) {
        Ok(c) => c,
        Err(e) => {
            report.push(Finding::fail(e, "fix that setting"));
            return None;
        }
    };
    let credential = cfg.credential;
    report.push(match credential {
        Credential::App => Finding::pass(format!(
            "HubSpot credential: {} (HUBSPOT_CREDENTIAL=app)",
            credential.describe()
        )),
        Credential::PrivateApp => Finding::warn(
            format!("HubSpot credential: {}", credential.describe()),
            "it keeps working until HubSpot retires legacy apps (September 2027), but no new one can be made: move to Baton's HubSpot app (README, Deploy: upgrading a deployment that uses a legacy private app)",
        ),
        Credential::ServiceKey => Finding::warn(
            format!("HubSpot credential: {}", credential.describe()),
            credential.features_off().unwrap_or_default(),
        ),
    });
    let fix = fixes(credential);
    let Some(token) = cfg.token.clone() else {
        report.push(Finding::fail(
            "HUBSPOT_ACCESS_TOKEN is not set",
            "install Baton's HubSpot app (README, HubSpot) and put its access token in (the stack's secret on AWS)",
        ));
        return None;
    };
    let client = match HubspotClient::from_config(&cfg) {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(e) => {
            report.push(Finding::fail(e.to_string(), "fix the HubSpot settings"));
            return None;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    // 1. The account: proves a token of any kind.
    let mut missing: Vec<&str> = Vec::new();
    match client
        .call(&api::account_details("account"), deadline)
        .await
    {
        Ok(a) if a.is_success() => report.push(Finding::pass(format!(
            "the HubSpot token works: portal {} (data hosted in {})",
            a.body["portalId"],
            a.body["dataHostingLocation"].as_str().unwrap_or("?")
        ))),
        Err(HubspotError::Configuration { status: 401, .. }) => {
            report.push(Finding::fail(
                "HubSpot refused HUBSPOT_ACCESS_TOKEN (HTTP 401)",
                fix.token,
            ));
            return None;
        }
        Err(HubspotError::Configuration {
            status: 403,
            scope: Some(scope),
            ..
        }) => missing.push(scope),
        Ok(a) => {
            report.push(Finding::fail(
                format!("HubSpot's account details answered HTTP {}", a.status),
                "check HUBSPOT_BASE_URL (leave it unset for api.hubapi.com)",
            ));
            return None;
        }
        Err(e) => {
            report.push(Finding::fail(
                format!("HubSpot could not be reached: {e}"),
                "check the network (and HUBSPOT_BASE_URL if you set it)",
            ));
            return None;
        }
    }
    // 2. The scopes.
    let listed = token_scopes(&client, token.expose_secret(), deadline).await;
    let (verified, unverified) = match &listed {
        Some(scopes) => {
            let lacking: Vec<&str> = SCOPES
                .iter()
                .map(|(s, _)| *s)
                .filter(|s| !scopes.iter().any(|have| have == s) && !missing.contains(s))
                .collect();
            missing.extend(lacking);
            (SCOPES.len(), Vec::new())
        }
        None => probe_scopes(&client, &mut missing, deadline).await,
    };
    report.push(if !missing.is_empty() {
        let named: Vec<String> = SCOPES
            .iter()
            .filter(|(s, _)| missing.contains(s))
            .map(|(s, why)| format!("{s} ({why})"))
            .collect();
        Finding::fail(
            format!("the HubSpot token lacks scopes: {}", named.join(", ")),
            fix.scopes,
        )
    } else if unverified.is_empty() {
        Finding::pass(format!(
            "the HubSpot token has Baton's {verified} scopes (HubSpot's token info)"
        ))
    } else {
        Finding::pass(format!(
            "the HubSpot token reads what Baton reads ({verified} scopes checked); HubSpot does not list this token's scopes, so {} are declared, unverified",
            unverified.join(", ")
        ))
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    report.push(
        match portal::pipeline_and_stage(&client, &cfg, deadline).await {
            Ok((pipeline, stage, _)) => Finding::pass(format!(
                "tickets go to pipeline {pipeline}, stage {stage}"
            )),
            Err(e) => Finding::fail(
                format!("the ticket pipeline or stage: {e}"),
                "set HUBSPOT_TICKET_PIPELINE / HUBSPOT_TICKET_STAGE (the stack's parameters) to ids the message lists, or leave them empty for the defaults",
            ),
        },
    );
    let can_create = !["crm.schemas.tickets.write", "crm.schemas.contacts.write"]
        .iter()
        .any(|s| missing.contains(s));
    report.push(match portal::missing_properties(&client, deadline).await {
        Ok(m) if m.is_empty() => Finding::pass("Baton's ticket and contact properties exist"),
        Ok(m) if can_create => Finding::pass(format!(
            "Baton's properties {} do not exist yet; the first handoff creates them",
            m.join(", ")
        )),
        Ok(m) => Finding::fail(
            format!(
                "Baton's properties {} are missing and cannot be created",
                m.join(", ")
            ),
            "grant the crm.schemas.tickets.write and crm.schemas.contacts.write scopes, or create them by hand (README, HubSpot)",
        ),
        Err(e) => Finding::fail(
            format!("the properties could not be read: {e}"),
            "see the scopes above",
        ),
    });
    Some(credential)
}

/// The token's scopes as HubSpot's token info lists them: only legacy private apps' tokens are
/// documented to have it (and only until September 2027), so any failure means "not listed".
async fn token_scopes(
    client: &HubspotClient,
    token: &str,
    deadline: Instant,
) -> Option<Vec<String>> {
    let answer = client
        .call(&api::legacy_token_info("scopes", token), deadline)
        .await
        .ok()
        .filter(baton_hubspot::client::Answer::is_success)?;
    let scopes = answer.body["scopes"].as_array()?;
    Some(
        scopes
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
    )
}

/// One cheap read per scope a read proves; a 403 names the scope missing. Returns how many
/// scopes were proved and the write scopes no read can prove.
async fn probe_scopes(
    client: &HubspotClient,
    missing: &mut Vec<&'static str>,
    deadline: Instant,
) -> (usize, Vec<&'static str>) {
    let probes = [
        api::list_properties("scopes", Object::Contacts),
        api::ticket_pipelines("scopes"),
        api::account_details("scopes"),
    ];
    let mut proved = Vec::new();
    for probe in probes {
        match client.call(&probe, deadline).await {
            Err(HubspotError::Configuration {
                status: 403,
                scope: Some(scope),
                ..
            }) => {
                if !missing.contains(&scope) {
                    missing.push(scope);
                }
            }
            _ => proved.push(probe.scope),
        }
    }
    let unverified = SCOPES
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| !proved.contains(s) && !missing.contains(s))
        .collect();
    (proved.len(), unverified)
}

/// Sends HubSpot's webhook a correctly signed test event about a property Baton ignores: the
/// events URL must take it, as it will take the app's real events.
async fn hubspot_events(
    src: &dyn Source,
    http: &reqwest::Client,
    credential: Credential,
    report: &mut Report,
) {
    if credential == Credential::ServiceKey {
        return;
    }
    let Some(base) = config::optional(src, PUBLIC_BASE_URL) else {
        return;
    };
    let url = format!("{}/hubspot/events", base.trim_end_matches('/'));
    let Some(secret) = current_secret(
        src,
        HUBSPOT_APP_SECRET,
        config::HUBSPOT_APP_SECRET_PLACEHOLDER,
    ) else {
        report.push(Finding::fail(
            "HUBSPOT_APP_SECRET is not set, so HubSpot's events (replies from HubSpot, closed and deleted tickets) would be refused",
            "copy the app's client secret (HubSpot > Development > Projects > baton > app > Auth) into it (the stack's secret on AWS)",
        ));
        return;
    };
    let now = baton_shared::clock::now_ms();
    let body = json!([{
        "eventId": 1, "subscriptionId": 0, "portalId": 0, "appId": 0, "occurredAt": now,
        "subscriptionType": "ticket.propertyChange", "attemptNumber": 0, "objectId": 0,
        "propertyName": "baton_doctor_probe", "propertyValue": "", "changeSource": "API"
    }])
    .to_string();
    let timestamp = now.to_string();
    let signature =
        baton_webhook::hubspot_webhook::sign_v3(&secret, "POST", &url, body.as_bytes(), &timestamp);
    let answer = http
        .post(&url)
        .header("content-type", "application/json")
        .header(baton_webhook::hubspot_webhook::SIGNATURE_HEADER, signature)
        .header(baton_webhook::hubspot_webhook::TIMESTAMP_HEADER, timestamp)
        .body(body)
        .send()
        .await;
    report.push(match answer.map(|r| r.status().as_u16()) {
        Err(e) => Finding::fail(
            format!("{url} could not be reached: {e}"),
            "check PUBLIC_BASE_URL (the stack's WebhookUrl) and that the stack is deployed",
        ),
        Ok(200) => Finding::pass(format!(
            "{url} accepts an event signed with HUBSPOT_APP_SECRET (the app's webhook target URL)"
        )),
        Ok(401) => Finding::fail(
            format!("{url} refused an event signed with HUBSPOT_APP_SECRET (401)"),
            "the deployed HUBSPOT_APP_SECRET differs from the one checked here (use --stack), or is not the app's client secret (Auth tab)",
        ),
        Ok(status) => Finding::fail(
            format!("{url} answered a signed test event with HTTP {status}"),
            "check that PUBLIC_BASE_URL points at Baton's webhook function",
        ),
    });
}

/// Meta sends a WhatsApp Business Account's messages to every app subscribed to it: Baton's
/// own app must be one, and the AI agent's app another.
async fn business_account(
    src: &dyn Source,
    http: &reqwest::Client,
    opts: Options,
    report: &mut Report,
) {
    let Ok(graph) = config::graph_config(src) else {
        return;
    };
    let Some(token) = graph.token.clone() else {
        return;
    };
    let get = |path: String| {
        let url = format!("{}/{}/{path}", graph.base_url, graph.version);
        let request = http.get(url).bearer_auth(token.expose_secret());
        async move { graph_json(request).await }
    };
    let app = match get("app".into()).await {
        Ok(app) => app,
        Err(e) => {
            report.push(Finding::fail(
                format!("the WhatsApp token's app could not be read: {e}"),
                format!(
                    "check {ACCESS_TOKEN}: it must be a System User token of Baton's own Meta app"
                ),
            ));
            return;
        }
    };
    let app_id = app["id"].as_str().unwrap_or_default().to_owned();
    let app_name = app["name"].as_str().unwrap_or("Baton's app").to_owned();
    webhook_fields(src, http, &graph, &app_id, &app_name, report).await;
    let Some(waba) = config::optional(src, BUSINESS_ACCOUNT_ID) else {
        report.push(Finding::fail(
            format!("{BUSINESS_ACCOUNT_ID} is not set, so Baton's subscription to your WhatsApp Business Account cannot be checked"),
            "set it to the account's id (WhatsApp Manager > Account tools > Business account info, or entry[].id in any webhook)",
        ));
        return;
    };
    let apps_path = format!("{waba}/subscribed_apps");
    let mut subscribed = get(apps_path.clone()).await.map(|b| apps_of(&b));
    let is_ours = |apps: &[(String, String)]| apps.iter().any(|(id, _)| *id == app_id);
    if opts.fix && matches!(&subscribed, Ok(apps) if !is_ours(apps)) {
        let url = format!("{}/{}/{apps_path}", graph.base_url, graph.version);
        if let Err(e) = graph_json(http.post(url).bearer_auth(token.expose_secret())).await {
            report.push(Finding::fail(
                format!("subscribing {app_name} to WhatsApp Business Account {waba} failed: {e}"),
                "the token's System User needs the account assigned with full control (Business Settings > System users > Assign assets)",
            ));
            return;
        }
        subscribed = get(apps_path.clone()).await.map(|b| apps_of(&b));
    }
    report.push(match subscribed {
        Err(e) => Finding::fail(
            format!("the apps subscribed to WhatsApp Business Account {waba} could not be read: {e}"),
            format!("check {BUSINESS_ACCOUNT_ID}, and that the token's System User has the account assigned"),
        ),
        Ok(apps) if !is_ours(&apps) => Finding::fail(
            format!("{app_name} ({app_id}) is not subscribed to WhatsApp Business Account {waba}, so Meta sends Baton none of its messages"),
            "run baton-local doctor --fix, which subscribes it (POST /<WABA_ID>/subscribed_apps with Baton's token)",
        ),
        Ok(apps) if apps.len() == 1 => Finding::warn(
            format!("{app_name} is the only app subscribed to WhatsApp Business Account {waba}"),
            "your AI agent receives nothing unless its own app is subscribed too: subscribe it with the agent's token (never point the agent's app at Baton's URL)",
        ),
        Ok(apps) => Finding::pass(format!(
            "{app_name} is subscribed to WhatsApp Business Account {waba}, beside {}: each app gets the messages",
            apps.iter()
                .filter(|(id, _)| *id != app_id)
                .map(|(_, name)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    });
}

/// The secret in use of a setting that lists several while rotating (the first), unless it is
/// still the template's placeholder.
fn current_secret(src: &dyn Source, name: &str, placeholder: &str) -> Option<String> {
    let list = config::optional(src, name).filter(|s| s != placeholder)?;
    baton_shared::whatsapp::AppSecrets::parse(&list).map(|s| s.current().expose_secret().to_owned())
}

/// The webhook fields Baton reads: `messages`, and Conversation Routing's.
const ROUTING_FIELDS: &[&str] = &["standby", "messaging_handovers"];

/// Which webhook fields Baton's app receives (`GET /<APP_ID>/subscriptions`, read with the app
/// access token): `messages` always, and Conversation Routing's once a business turns it on.
async fn webhook_fields(
    src: &dyn Source,
    http: &reqwest::Client,
    graph: &GraphConfig,
    app_id: &str,
    app_name: &str,
    report: &mut Report,
) {
    let Some(secret) = current_secret(src, APP_SECRET, config::APP_SECRET_PLACEHOLDER) else {
        return;
    };
    let url = format!(
        "{}/{}/{app_id}/subscriptions",
        graph.base_url, graph.version
    );
    let answer = graph_json(http.get(url).bearer_auth(format!("{app_id}|{secret}"))).await;
    let fields: Vec<String> = match answer {
        Err(e) => {
            report.push(Finding::fail(
                format!("{app_name}'s webhook fields could not be read: {e}"),
                "check WHATSAPP_APP_SECRET: it must be the App secret of the app the WhatsApp token belongs to",
            ));
            return;
        }
        Ok(body) => body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["object"] == "whatsapp_business_account")
            .flat_map(|s| s["fields"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .collect(),
    };
    let has = |f: &str| fields.iter().any(|have| have == f);
    let missing: Vec<&str> = ROUTING_FIELDS.iter().copied().filter(|f| !has(f)).collect();
    report.push(if !has("messages") {
        Finding::fail(
            format!("{app_name} is not subscribed to the messages webhook field, so Meta sends it no customer messages"),
            "App Dashboard > WhatsApp > Configuration > Webhook fields: subscribe messages",
        )
    } else if !missing.is_empty() {
        Finding::warn(
            format!("{app_name} is not subscribed to {}: once your business turns Conversation Routing on, Baton would not see the threads your AI agent owns, nor its handoffs", missing.join(", ")),
            "App Dashboard > WhatsApp > Configuration > Webhook fields: subscribe standby and messaging_handovers (and smb_message_echoes for a number also on the WhatsApp Business app); they need the whatsapp_business_management permission",
        )
    } else {
        Finding::pass(format!(
            "{app_name} receives messages, standby and messaging_handovers (ready for Conversation Routing)"
        ))
    });
}

/// The apps a `subscribed_apps` answer lists, as (id, name).
fn apps_of(body: &Value) -> Vec<(String, String)> {
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            let app = &entry["whatsapp_business_api_data"];
            (
                app["id"].as_str().unwrap_or_default().to_owned(),
                app["name"].as_str().unwrap_or("an unnamed app").to_owned(),
            )
        })
        .collect()
}

/// A Graph answer's JSON, or Graph's error as one line.
async fn graph_json(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let r = request.send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(format!(
            "HTTP {status}, error {}: {}",
            body["error"]["code"].as_i64().unwrap_or_default(),
            body["error"]["message"].as_str().unwrap_or("no message")
        ))
    }
}

/// Which front door the stack's URL is, and whether it is the one the stack was asked for.
fn front_door(src: &dyn Source, report: &mut Report) {
    let Some(base) = config::optional(src, PUBLIC_BASE_URL) else {
        return;
    };
    let host = base
        .split("://")
        .nth(1)
        .unwrap_or(&base)
        .split('/')
        .next()
        .unwrap_or_default();
    let (seen, what) = if host.contains(".lambda-url.") {
        (
            "FunctionUrl",
            "the webhook function's URL (no per-request charge)",
        )
    } else if host.contains(".execute-api.") {
        (
            "HttpApi",
            "an API Gateway HTTP API ($1.00 per million requests)",
        )
    } else {
        return;
    };
    report.push(match config::optional(src, FRONT_DOOR) {
        Some(asked) if asked != seen => Finding::fail(
            format!("the stack was asked for FrontDoor {asked}, but its WebhookUrl is {what}"),
            "update the stack (sam deploy) so its outputs match its parameters",
        ),
        _ => Finding::pass(format!("the front door is {what}")),
    });
}

async fn handshake(src: &dyn Source, http: &reqwest::Client, report: &mut Report) {
    let Some(base) = config::optional(src, PUBLIC_BASE_URL) else {
        report.push(Finding::fail(
            "PUBLIC_BASE_URL is not set, so the webhook cannot be tried",
            "set it to the stack's WebhookUrl without /webhook (or give --stack)",
        ));
        return;
    };
    let Some(token) = config::optional(src, VERIFY_TOKEN) else {
        return;
    };
    let mut r = [0u8; 8];
    let _ = getrandom::fill(&mut r);
    let challenge = format!("baton-doctor-{}", u64::from_le_bytes(r));
    let url = format!("{}/webhook", base.trim_end_matches('/'));
    let enc = baton_shared::media_keys::url_component;
    let answer = http
        .get(format!(
            "{url}?hub.mode=subscribe&hub.verify_token={}&hub.challenge={}",
            enc(&token),
            enc(&challenge)
        ))
        .send()
        .await;
    report.push(match answer {
        Err(e) => Finding::fail(
            format!("{url} could not be reached: {e}"),
            "check PUBLIC_BASE_URL (the stack's WebhookUrl) and that the stack is deployed",
        ),
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            if status == 200 && body == challenge {
                Finding::pass(format!("{url} answers Meta's handshake with the verify token"))
            } else if status == 403 {
                Finding::fail(
                    format!("{url} refused the handshake with this verify token (403)"),
                    "the deployed WHATSAPP_VERIFY_TOKEN differs from the one checked here: use the stack's secret (--stack) and type that token into Meta's dashboard",
                )
            } else {
                Finding::fail(
                    format!("{url} answered the handshake with HTTP {status}, not the challenge"),
                    "check that PUBLIC_BASE_URL points at Baton's webhook function",
                )
            }
        }
    });
}

async fn storage(src: &dyn Source, aws: &aws_config::SdkConfig, report: &mut Report) {
    match config::optional(src, TABLE_NAME) {
        None => report.push(Finding::fail(
            "TABLE_NAME is not set",
            "give --stack, or set it to the stack's TableName output",
        )),
        Some(table) => {
            let d = aws_sdk_dynamodb::Client::new(aws);
            report.push(match d.describe_table().table_name(&table).send().await {
                Ok(out) => {
                    let stream = out
                        .table()
                        .and_then(|t| t.stream_specification())
                        .is_some_and(aws_sdk_dynamodb::types::StreamSpecification::stream_enabled);
                    if stream {
                        Finding::pass(format!("table {table} is reachable, its stream on"))
                    } else {
                        Finding::fail(
                            format!("table {table} has no stream"),
                            "deploy template.yaml again: the functions are fed by the table's stream",
                        )
                    }
                }
                Err(e) => Finding::fail(
                    format!(
                        "table {table} is not reachable: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    ),
                    "check the AWS credentials and region, and the stack's TableName",
                ),
            });
        }
    }
    if let Some(bucket) = config::optional(src, MEDIA_BUCKET) {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(aws)
                .force_path_style(config::s3_path_style(src))
                .build(),
        );
        report.push(match s3.head_bucket().bucket(&bucket).send().await {
            Ok(_) => Finding::pass(format!("bucket {bucket} is reachable")),
            Err(e) => Finding::fail(
                format!(
                    "bucket {bucket} is not reachable: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ),
                "check the AWS credentials and region, and the stack's MediaBucketName",
            ),
        });
    }
    let sqs = aws_sdk_sqs::Client::new(aws);
    for (name, label) in [
        (HUBSPOT_QUEUE, "HubSpot dead-letter queue"),
        (HANDOFF_QUEUE, "handoff dead-letter queue"),
        (MEDIA_QUEUE, "media copies' dead-letter queue"),
    ] {
        let Some(url) = config::optional(src, name) else {
            continue;
        };
        let answer = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await;
        report.push(match answer {
            Ok(out) => {
                let waiting = out
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                    })
                    .cloned()
                    .unwrap_or_else(|| "0".into());
                Finding::pass(format!(
                    "the {label} is reachable ({waiting} record(s) waiting)"
                ))
            }
            Err(e) => Finding::fail(
                format!(
                    "the {label} is not reachable: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ),
                "check the AWS credentials and region, and the stack's queue outputs",
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{FRONT_DOOR, Report, front_door, mask_tokens};
    use baton_shared::config::PUBLIC_BASE_URL;

    #[test]
    fn the_front_door_is_named_from_the_stack_url_and_checked_against_the_parameter() {
        let url = "https://abcdefgh.lambda-url.eu-west-1.on.aws/";
        let api = "https://abc123.execute-api.eu-west-1.amazonaws.com";
        let cases = [
            (
                url,
                "FunctionUrl",
                true,
                "the webhook function's URL (no per-request charge)",
            ),
            (api, "HttpApi", true, "an API Gateway HTTP API"),
            (
                api,
                "FunctionUrl",
                false,
                "asked for FrontDoor FunctionUrl, but its WebhookUrl is an API Gateway HTTP API",
            ),
        ];
        for (base, asked, ok, want) in cases {
            let mut report = Report(Vec::new());
            let settings = [(PUBLIC_BASE_URL, base), (FRONT_DOOR, asked)];
            front_door(&settings, &mut report);
            assert_eq!(report.0.len(), 1);
            assert_eq!(report.0[0].ok, ok, "{base} {asked}");
            assert!(report.0[0].what.contains(want), "{}", report.0[0].what);
        }
        // A local or custom address names no front door.
        let mut report = Report(Vec::new());
        front_door(&[(PUBLIC_BASE_URL, "http://127.0.0.1:3000")], &mut report);
        assert!(report.0.is_empty());
    }

    #[test]
    fn token_shaped_words_are_masked_and_nothing_else() {
        let text = "pipeline \"pat-na1-6a1bc2d3-0000-4e5f-9a8b-112233445566\" is not a ticket pipeline; \
                    token EAAGm0PX4ZCpsBAKZC0abc, secret 3f9a0c7e5b1d2f4a6c8e0b2d4f6a8c0e2b4d6f8a, \
                    https://abc123.execute-api.eu-west-1.amazonaws.com/webhook, portal 62515, \
                    number 106540352242922, handoff ho_a480993bc96d423c8f0b46aa";
        let masked = mask_tokens(text);
        assert_eq!(
            masked,
            "pipeline \"pat-…(masked)\" is not a ticket pipeline; \
             token EAAG…(masked), secret 3f9a…(masked), \
             https://abc123.execute-api.eu-west-1.amazonaws.com/webhook, portal 62515, \
             number 106540352242922, handoff ho_a480993bc96d423c8f0b46aa"
        );
    }
}
