//! `baton-local doctor`: checks a set-up before the first handoff, each with ✓ or ✗ and, when it
//! fails, a one-line fix. It reads what the functions read: the environment, or with
//! `--stack NAME` the deployed stack's outputs, parameters and secret. It never prints a secret.

use std::collections::HashMap;
use std::time::Duration;

use baton_hubspot::api::SCOPES as REQUIRED_SCOPES;
use baton_hubspot::portal;
use baton_hubspot::{HubspotClient, HubspotConfig};
use baton_shared::config::{
    self, ACCESS_TOKEN, APP_SECRET, MEDIA_BUCKET, PUBLIC_BASE_URL, Source, TABLE_NAME, VERIFY_TOKEN,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::time::Instant;

/// The business number's id (WhatsApp Manager > Phone numbers), read by the doctor and the smoke
/// test; the functions take it from each webhook.
pub const PHONE_NUMBER_ID: &str = "WHATSAPP_PHONE_NUMBER_ID";
/// The dead-letter queues (the stack's outputs; settable for a stack checked by hand).
pub const HUBSPOT_QUEUE: &str = "HUBSPOT_FAILURES_QUEUE_URL";
pub const HANDOFF_QUEUE: &str = "HANDOFF_FAILURES_QUEUE_URL";

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub what: String,
    /// What to do about it (failures only).
    pub fix: String,
}

impl Finding {
    pub fn pass(what: impl Into<String>) -> Self {
        Self {
            ok: true,
            what: what.into(),
            fix: String::new(),
        }
    }

    pub fn fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            ok: false,
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

    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.0 {
            if f.ok {
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
        out
    }

    fn push(&mut self, f: Finding) {
        self.0.push(f);
    }
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
            "GraphApiVersion" => config::GRAPH_API_VERSION,
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
pub async fn run(src: &(dyn Source + Sync), aws: Option<&aws_config::SdkConfig>) -> Report {
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
    hubspot(src, &http, &mut report).await;
    handshake(src, &http, &mut report).await;
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

async fn hubspot(src: &(dyn Source + Sync), http: &reqwest::Client, report: &mut Report) {
    let cfg = match hubspot_config(src) {
        Ok(c) => c,
        Err(e) => {
            report.push(Finding::fail(e, "fix that setting"));
            return;
        }
    };
    let Some(token) = cfg.token.clone() else {
        report.push(Finding::fail(
            "HUBSPOT_ACCESS_TOKEN is not set",
            "create a private app (HubSpot > Settings > Integrations > Private apps) with Baton's scopes and put its token in",
        ));
        return;
    };
    let info = http
        .post(format!(
            "{}/oauth/v2/private-apps/get/access-token-info",
            cfg.base_url
        ))
        .json(&json!({"tokenKey": token.expose_secret()}))
        .send()
        .await;
    let scopes: Vec<String> = match info {
        Err(e) => {
            report.push(Finding::fail(
                format!("HubSpot could not be reached: {e}"),
                "check the network (and HUBSPOT_BASE_URL if you set it)",
            ));
            return;
        }
        Ok(r) if !r.status().is_success() => {
            report.push(Finding::fail(
                format!("HubSpot refused HUBSPOT_ACCESS_TOKEN (HTTP {})", r.status().as_u16()),
                "copy the private app's access token again (Auth tab); a rotated or deleted app's token stops working",
            ));
            return;
        }
        Ok(r) => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| {
                v["scopes"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default(),
    };
    let missing: Vec<String> = REQUIRED_SCOPES
        .iter()
        .filter(|(s, _)| !scopes.iter().any(|have| have == s))
        .map(|(s, why)| format!("{s} ({why})"))
        .collect();
    report.push(if missing.is_empty() {
        Finding::pass(format!(
            "the HubSpot token is valid and has Baton's {} scopes",
            REQUIRED_SCOPES.len()
        ))
    } else {
        Finding::fail(
            format!("the HubSpot token lacks scopes: {}", missing.join(", ")),
            "add them in the private app's Scopes tab, then copy its token again",
        )
    });
    let client = match HubspotClient::from_config(&cfg) {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => {
            report.push(Finding::fail(e.to_string(), "fix the HubSpot settings"));
            return;
        }
    };
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
    let can_create = ["crm.schemas.tickets.write", "crm.schemas.contacts.write"]
        .iter()
        .all(|s| scopes.iter().any(|have| have == s));
    report.push(match portal::missing_properties(&client, deadline).await {
        Ok(m) if m.is_empty() => Finding::pass("Baton's ticket and contact properties exist"),
        Ok(m) if can_create => Finding::pass(format!(
            "Baton's properties {} do not exist yet; the first handoff creates them",
            m.join(", ")
        )),
        Ok(m) => Finding::fail(
            format!("Baton's properties {} are missing and cannot be created", m.join(", ")),
            "add the crm.schemas.tickets.write and crm.schemas.contacts.write scopes, or create them by hand (README, HubSpot)",
        ),
        Err(e) => Finding::fail(
            format!("the properties could not be read: {e}"),
            "see the scopes above",
        ),
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
