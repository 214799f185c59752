//! `baton-local demo`: plays a short conversation through the real handlers — signed WhatsApp
//! deliveries and agent events into the webhook, the handoff stage, the HubSpot stage — and
//! prints the ticket and note it produced (from the outbox without a token, from HubSpot with one).

use std::time::Duration;

use baton_shared::agent::SIGNATURE_HEADER;
use baton_shared::domain::{ConversationKey, HandoffRecord};
use baton_shared::whatsapp::sign;
use bytes::Bytes;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::{Feed, LocalConfig, Stage};

const DEMO_PHONE_NUMBER_ID: &str = "100000000000000";

async fn post(
    app: &baton_webhook::Webhook,
    path: &str,
    header: &str,
    sig: String,
    body: Value,
) -> Result<(), String> {
    let body = Bytes::from(body.to_string());
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .header(header, sig)
        .body(body)
        .map_err(|e| e.to_string())?;
    let response = app.handle(req).await;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "{path} answered {}: {}",
            response.status(),
            String::from_utf8_lossy(response.body())
        ))
    }
}

/// Runs the demo; returns what to print.
pub async fn run(cfg: &LocalConfig) -> Result<String, String> {
    let stores = cfg.open_store().await.map_err(|e| e.to_string())?;
    let app = baton_webhook::Webhook::new(stores.store.clone(), cfg.secrets.clone());
    let mut r = [0u8; 4];
    getrandom::fill(&mut r).map_err(|e| e.to_string())?;
    // A new customer each run, so every run makes a new handoff.
    let customer = format!("1555{:07}", u32::from_le_bytes(r) % 10_000_000);
    let t0 = baton_shared::clock::now_ms() / 1000 - 120;
    let delivery = |wamid: &str, ts: i64, text: &str| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "0", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": DEMO_PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Demo Customer"}, "wa_id": customer}],
            "messages": [{"from": customer, "id": format!("wamid.demo-{customer}-{wamid}"), "timestamp": ts.to_string(), "type": "text", "text": {"body": text}}]
        }}]}]})
    };
    let app_secret = cfg.secrets.app_secrets.current().expose_secret().to_owned();
    let webhook = async |body: Value| {
        let sig = sign(&app_secret, body.to_string().as_bytes());
        post(&app, "/webhook", "x-hub-signature-256", sig, body).await
    };
    webhook(delivery(
        "1",
        t0,
        "Hi! My order 48213 arrived broken, the screen is cracked.",
    ))
    .await?;
    let agent_secret = cfg
        .secrets
        .agent_secrets
        .as_ref()
        .map(|s| s.current().expose_secret().to_owned())
        .ok_or("no agent events secret")?;
    let events = json!({"events": [
        {"id": format!("demo-{customer}-1"), "type": "tool_call", "phone_number_id": DEMO_PHONE_NUMBER_ID, "customer": customer, "timestamp": t0 + 5,
         "tool": {"name": "lookup_order", "input": {"order": "48213"}, "output": {"status": "delivered"}, "duration_ms": 85}},
        {"id": format!("demo-{customer}-2"), "type": "message", "phone_number_id": DEMO_PHONE_NUMBER_ID, "customer": customer, "timestamp": t0 + 6,
         "text": "I'm sorry to hear that! Could you send me a photo of the screen?"}
    ]});
    let sig = sign(&agent_secret, events.to_string().as_bytes());
    post(&app, "/agent/events", SIGNATURE_HEADER, sig, events).await?;
    webhook(delivery(
        "2",
        t0 + 60,
        "This is the second time this happens and I am really frustrated. I want to talk to a human, please.",
    ))
    .await?;

    let processor = cfg.processor(stores.handoff.clone()).await?;
    let deliverer = std::sync::Arc::new(cfg.deliverer(stores.trails.clone()).await?);
    let key = ConversationKey::new(DEMO_PHONE_NUMBER_ID, customer.as_str());
    let id = HandoffRecord::id_for(&key, 1);
    let stages = [Stage::Handoff(processor), Stage::Hubspot(deliverer.clone())];
    let mut readers = [None, None];
    // The stages run until the handoff exists and HubSpot has it (streams take a moment).
    let mut record = None;
    for _ in 0..120 {
        for (stage, reader) in stages.iter().zip(readers.iter_mut()) {
            stage.drain(&stores.feed, reader, &cfg.data_dir).await?;
        }
        if record.is_none() {
            record = stores
                .handoff
                .handoff(&id)
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(r) = &record
            && let Some(t) = stores
                .trails
                .trail(&r.id)
                .await
                .map_err(|e| e.to_string())?
            && t.status != baton_shared::domain::TrailStatus::InProgress
        {
            break;
        }
        if matches!(stores.feed, Feed::DynamoDb { .. }) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let record = record.ok_or("no handoff was made; see the log")?;
    let trail = stores
        .trails
        .trail(&record.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the HubSpot stage did not run")?;
    // The customer writes again while the ticket is open: a follow-up on the same ticket.
    let mut follow_up = None;
    if trail.status == baton_shared::domain::TrailStatus::Done {
        webhook(delivery(
            "3",
            t0 + 90,
            "Here it is again: order 48213. The box was already open when it came.",
        ))
        .await?;
        for _ in 0..120 {
            for (stage, reader) in stages.iter().zip(readers.iter_mut()) {
                stage.drain(&stores.feed, reader, &cfg.data_dir).await?;
            }
            follow_up = stores
                .handoff
                .ticket_events(&record.id)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|(_, t)| t.status != baton_shared::domain::TrailStatus::InProgress);
            if follow_up.is_some() {
                break;
            }
            if matches!(stores.feed, Feed::DynamoDb { .. }) {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    let mut out = format!(
        "Demo conversation with +{customer}: 2 customer messages, an agent tool call and reply.\n\
         Handoff {}: {} — {}\n\
         Insights: language {}, sentiment {} ({:+.2}), summary: {}\n\n",
        record.id,
        record.reason.category,
        record.reason.text,
        record.insights.language.as_deref().unwrap_or("unknown"),
        record.insights.sentiment.label.as_str(),
        record.insights.sentiment.score,
        record.insights.summary,
    );
    out.push_str(&format!(
        "HubSpot: {} (contact {}, ticket {}, note {})\n",
        trail.status.as_str(),
        trail.contact.id.as_deref().unwrap_or("-"),
        trail.ticket.id.as_deref().unwrap_or("-"),
        trail.note.id.as_deref().unwrap_or("-"),
    ));
    if let Some(e) = &trail.last_error {
        out.push_str(&format!("Last error: {}\n", e.message));
    }
    if let Some((_, t)) = &follow_up {
        out.push_str(&format!(
            "Follow-up (the customer wrote again): {} on ticket {} (note {})\n",
            t.status.as_str(),
            trail.ticket.id.as_deref().unwrap_or("-"),
            t.step("note").and_then(|s| s.id.as_deref()).unwrap_or("-"),
        ));
    }
    if let Some(links) = &cfg.hubspot.sessions {
        out.push_str(&format!(
            "Session page (the note's link; open it while `baton-local` serves): {}\n",
            links.link(&record.id, record.created_at_ms / 1000)
        ));
    }
    if cfg.hubspot.token.is_none() {
        let dir = cfg.outbox_dir();
        out.push_str(&format!(
            "\nNo HUBSPOT_ACCESS_TOKEN: the requests were written to {} instead of sent.\n",
            dir.display()
        ));
        for (what, path, holds) in [
            ("Ticket", "-tickets.json", ""),
            ("Note", "-notes.json", "WhatsApp handoff"),
            ("Follow-up note", "-notes.json", "WhatsApp follow-up"),
        ] {
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.to_string_lossy();
                    name.contains("-post-crm-objects-") && name.ends_with(path)
                })
                .collect();
            files.sort();
            // The latest request of its kind that holds `holds`.
            let mut found = None;
            for file in files.into_iter().rev() {
                let request: Value =
                    serde_json::from_slice(&std::fs::read(&file).map_err(|e| e.to_string())?)
                        .map_err(|e| e.to_string())?;
                if request.to_string().contains(holds) {
                    found = Some((file, request));
                    break;
                }
            }
            let Some((file, request)) = found else {
                continue;
            };
            let props = &request["body"]["properties"];
            out.push_str(&format!("\n{what} ({}):\n", file.display()));
            if what == "Ticket" {
                for k in [
                    "subject",
                    "hs_pipeline",
                    "hs_pipeline_stage",
                    "hs_ticket_priority",
                    "baton_escalation_reason",
                    "baton_sentiment",
                    "baton_language",
                    "baton_session_url",
                ] {
                    if let Some(v) = props[k].as_str() {
                        out.push_str(&format!("  {k}: {v}\n"));
                    }
                }
                out.push_str(&format!(
                    "  content:\n{}\n",
                    indent(props["content"].as_str().unwrap_or(""))
                ));
            } else {
                out.push_str(&format!(
                    "  hs_note_body: {}\n",
                    props["hs_note_body"].as_str().unwrap_or("")
                ));
            }
        }
    } else if let Some(ticket) = &trail.ticket.id {
        out.push_str(&format!(
            "Open ticket {ticket} in HubSpot (Service > Tickets); the note is on its timeline.\n"
        ));
    }
    Ok(out)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
