//! The insights from Amazon Bedrock, against a local Converse server that checks SigV4 and the
//! request's shape: the model's briefing on the handoff record, and every way it can fail falling
//! back to the built-in insights with the note saying why. (No real model answers here: the
//! server's answers are the test's.)

use std::time::Duration;

use serde_json::{Value, json};

use baton_handoff::bedrock::{self, BedrockConfig, BedrockInsights};
use baton_shared::domain::*;
use baton_testkit::bedrock::{Answer, BedrockServer, good_answer};
use baton_testkit::bodies;

use crate::handoff::{self, PNID, T0};

const MODEL: &str = "us.amazon.nova-lite-v1:0";

fn model(server: &BedrockServer, config: BedrockConfig) -> BedrockInsights {
    BedrockInsights::new(&server.sdk_config(), config)
}

fn config() -> BedrockConfig {
    BedrockConfig {
        timeout: Duration::from_millis(800),
        ..BedrockConfig::new(MODEL)
    }
}

/// The demo's conversation for `customer`, ending with the request for a person.
fn demo(customer: &str, first_wamid: usize) -> Vec<u8> {
    let lines = [
        "My order 48213 arrived broken, the screen is cracked.",
        "I already sent a photo yesterday.",
        "This is the second time this happens and I am really frustrated.",
        "I want to talk to a human, please.",
    ];
    let messages: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, text)| {
            bodies::text(
                &format!("wamid.i{customer}-{}", first_wamid + i),
                customer,
                T0 + i as i64 * 10,
                text,
            )
        })
        .collect();
    bodies::delivery(
        PNID,
        bodies::contact(customer, "Maria Lopez"),
        Value::Array(messages),
        json!([]),
    )
}

fn handoff_of<'a>(handoffs: &'a [HandoffRecord], customer: &str) -> &'a HandoffRecord {
    handoffs
        .iter()
        .find(|h| h.conversation.customer == customer)
        .unwrap_or_else(|| panic!("no handoff for {customer}"))
}

#[tokio::test]
async fn bedrock_briefs_the_rep_and_every_failure_falls_back_to_the_built_in_insights() {
    let server = BedrockServer::start(MODEL).await;
    let Some(mut rig) = handoff::rig_with_bedrock(model(&server, config())).await else {
        return;
    };
    rig.deliver_twice(demo("16505550001", 0)).await;
    rig.run_stream(false).await;
    let handoffs = rig.handoffs().await;
    let h = handoff_of(&handoffs, "16505550001");
    let want = good_answer();
    assert_eq!(h.insights.summary, want["summary"].as_str().unwrap());
    assert_eq!(h.insights.summary_source, Source::Bedrock);
    assert_eq!(
        h.insights.summary_by.as_deref(),
        Some("Amazon Bedrock (us.amazon.nova-lite-v1:0)")
    );
    assert_eq!(
        h.insights.model_reason.as_deref(),
        want["escalation_reason"].as_str()
    );
    assert_eq!(
        (h.insights.sentiment.label, h.insights.sentiment.source),
        (SentimentLabel::Negative, Source::Bedrock)
    );
    assert_eq!(h.insights.language.as_deref(), Some("en"));
    // What Baton sent: signed (the server checked), the system prompt, the tool forced, and the
    // customer's words inside the data tags.
    assert!(server.refused().is_empty(), "{:?}", server.refused());
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["system"][0]["text"], bedrock::SYSTEM_PROMPT);
    assert_eq!(
        sent[0]["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        bedrock::tool_schema()
    );
    assert_eq!(
        sent[0]["toolConfig"]["toolChoice"]["tool"]["name"],
        bedrock::TOOL_NAME
    );
    let user = sent[0]["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert!(user.starts_with("<transcript>\n"), "{user}");
    assert!(user.contains("My order 48213 arrived broken"), "{user}");
    assert!(
        user.contains("I want to talk to a human, please."),
        "{user}"
    );

    // Each failure: the built-in insights, and the record says which made the summary and why.
    let cases = [
        (Answer::Throttle, "was throttled"),
        (
            Answer::Hang(Duration::from_secs(3), good_answer()),
            "timed out after 800 ms",
        ),
        (Answer::Refuse, "refused (content_filtered)"),
        (
            Answer::TextOnly("Sure! The customer is upset.".into()),
            "answered outside the schema (no record_handoff_insights call)",
        ),
        (
            Answer::Tool(
                json!({"summary": "ok", "escalation_reason": "x", "sentiment": "furious", "language": "en"}),
            ),
            "answered outside the schema (sentiment not one of the three)",
        ),
    ];
    for (i, (answer, why)) in cases.into_iter().enumerate() {
        server.answer(answer);
        let customer = format!("1650555100{i}");
        rig.deliver_twice(demo(&customer, 0)).await;
        rig.run_stream(false).await;
        let handoffs = rig.handoffs().await;
        let h = handoff_of(&handoffs, &customer);
        assert_eq!(h.insights.summary_source, Source::Builtin, "{why}");
        assert_eq!(h.insights.sentiment.source, Source::Builtin, "{why}");
        assert!(h.insights.model_reason.is_none());
        assert!(
            h.insights.summary.contains("My order 48213 arrived broken"),
            "the built-in summary: {}",
            h.insights.summary
        );
        assert_eq!(
            h.insights.summary_by.as_deref(),
            Some(format!("Baton's built-in summary, because Amazon Bedrock (us.amazon.nova-lite-v1:0) {why}").as_str())
        );
    }
}

#[tokio::test]
async fn a_wrong_signature_is_refused_and_the_agents_own_summary_wins_without_a_call() {
    let server = BedrockServer::start(MODEL).await;
    let mut forged = server.sdk_config().to_builder();
    forged.set_credentials_provider(Some(
        aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new(
                baton_testkit::bedrock::ACCESS_KEY,
                "not-the-secret",
                None,
                None,
                "forged",
            ),
        ),
    ));
    let wrong = BedrockInsights::new(&forged.build(), config());
    let Some(mut rig) = handoff::rig_with_bedrock(wrong).await else {
        return;
    };
    rig.deliver_twice(demo("16505550002", 0)).await;
    rig.run_stream(false).await;
    let handoffs = rig.handoffs().await;
    let h = handoff_of(&handoffs, "16505550002");
    assert_eq!(h.insights.summary_source, Source::Builtin);
    assert!(server.requests().is_empty());
    assert_eq!(server.refused(), ["the SigV4 signature does not match"]);
    assert!(
        h.insights
            .summary_by
            .as_deref()
            .unwrap()
            .contains("failed (InvalidSignatureException"),
        "{:?}",
        h.insights.summary_by
    );

    // The agent hands over with its own summary: no model call.
    let answer = rig
        .agent(json!({"id": "ev-h1", "type": "handoff", "phone_number_id": PNID, "customer": "16505550003",
            "timestamp": T0, "handoff": {"category": "billing", "reason": "Refund over the limit",
            "summary": "Wants a refund of 80 EUR for order 77.", "sentiment": "neutral", "language": "de"}}))
        .await;
    assert_eq!(answer["events_new"], 1);
    rig.run_stream(false).await;
    let handoffs = rig.handoffs().await;
    let h = handoff_of(&handoffs, "16505550003");
    assert_eq!(
        (h.insights.summary.as_str(), h.insights.summary_source),
        ("Wants a refund of 80 EUR for order 77.", Source::Agent)
    );
    assert_eq!(h.insights.summary_by.as_deref(), Some("the AI agent"));
    assert_eq!(server.refused().len(), 1, "no second call");
}

#[tokio::test]
async fn a_conversation_far_over_the_budget_is_cut_keeping_its_start_its_end_and_the_request() {
    let server = BedrockServer::start(MODEL).await;
    let budget = 1_500;
    let config = BedrockConfig {
        token_budget: budget,
        ..config()
    };
    let Some(mut rig) = handoff::rig_with_bedrock(model(&server, config)).await else {
        return;
    };
    let customer = "16505550004";
    for chunk in 0..5 {
        let messages: Vec<Value> = (0..100)
            .map(|i| {
                let n = chunk * 100 + i;
                bodies::text(
                    &format!("wamid.long-{n}"),
                    customer,
                    T0 + n as i64,
                    &format!(
                        "Message {n}: still waiting for the courier, tracking number TRK{n:05}."
                    ),
                )
            })
            .collect();
        rig.deliver_twice(bodies::delivery(
            PNID,
            bodies::contact(customer, "Long Talker"),
            Value::Array(messages),
            json!([]),
        ))
        .await;
    }
    rig.deliver_twice(bodies::delivery(
        PNID,
        bodies::contact(customer, "Long Talker"),
        json!([bodies::text(
            "wamid.long-ask",
            customer,
            T0 + 1_000,
            "I want to talk to a human"
        )]),
        json!([]),
    ))
    .await;
    rig.run_stream(false).await;
    let handoffs = rig.handoffs().await;
    assert_eq!(
        handoff_of(&handoffs, customer).insights.summary_source,
        Source::Bedrock
    );
    let sent = server.requests();
    let user = sent.last().unwrap()["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let tokens = bedrock::estimated_tokens(&user);
    println!("a 500-message conversation sent as {tokens} estimated tokens (budget {budget})");
    assert!(tokens <= budget + 100, "{tokens} tokens");
    assert!(user.contains("Message 0:"), "the start");
    assert!(user.contains("Message 499:"), "the end");
    assert!(user.contains("I want to talk to a human"), "the request");
    assert!(user.contains("lines left out …]"), "the cut is marked");
    assert!(!user.contains("Message 250:"), "the middle is left out");
}
