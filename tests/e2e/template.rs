//! template.yaml against the code: the routes the webhook serves, the settings each function
//! reads, and the TTL attribute the store writes. (cfn-lint and `sam validate --lint` check the
//! template itself in scripts/test.)

fn template() -> String {
    std::fs::read_to_string(format!("{}/template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The text of one top-level resource: its line and those indented under it.
fn resource<'a>(t: &'a str, name: &str) -> &'a str {
    let start = t
        .find(&format!("\n  {name}:\n"))
        .unwrap_or_else(|| panic!("no resource {name}"))
        + 1;
    let body = &t[start..];
    let mut offset = 0;
    for (i, line) in body.split_inclusive('\n').enumerate() {
        if i > 0 && line.starts_with("  ") && !line.starts_with("   ") {
            return &body[..offset];
        }
        offset += line.len();
    }
    body
}

#[test]
fn the_template_wires_what_the_functions_read_and_serve() {
    use baton_shared::config::*;
    let t = template();
    let webhook = resource(&t, "WebhookFunction");
    // Two front doors, one at a time, each sending every path to the webhook function, whose
    // router serves its routes and answers 404 for the rest: its URL (the default, no
    // per-request charge) and an HTTP API.
    assert!(t.contains("FrontDoor:\n    Type: String\n    Default: FunctionUrl\n    AllowedValues: [FunctionUrl, HttpApi]"));
    let url = resource(&t, "WebhookFunctionUrl");
    for want in [
        "Type: AWS::Lambda::Url",
        "Condition: UseFunctionUrl",
        "TargetFunctionArn: !GetAtt WebhookFunction.Arn",
        "AuthType: NONE",
    ] {
        assert!(url.contains(want), "function URL: {want}");
    }
    // Since October 2025 a public function URL needs both permissions.
    assert!(
        resource(&t, "WebhookFunctionUrlPermission").contains("Action: lambda:InvokeFunctionUrl")
    );
    let invoke = resource(&t, "WebhookFunctionInvokePermission");
    assert!(
        invoke.contains("Action: lambda:InvokeFunction\n")
            && invoke.contains("InvokedViaFunctionUrl: true")
    );
    for name in [
        "HttpApi",
        "HttpApiIntegration",
        "HttpApiRoute",
        "HttpApiStage",
        "HttpApiPermission",
    ] {
        assert!(
            resource(&t, name).contains("Condition: UseHttpApi"),
            "{name}"
        );
    }
    assert!(resource(&t, "HttpApiRoute").contains("RouteKey: $default"));
    assert!(
        resource(&t, "HttpApiIntegration").contains("IntegrationUri: !GetAtt WebhookFunction.Arn")
    );
    assert!(resource(&t, "HttpApiStage").contains("AccessLogSettings:"));
    assert!(
        !webhook.contains("Events:"),
        "routes are the function's own"
    );
    for route in [
        baton_webhook::WEBHOOK_PATH,
        baton_webhook::AGENT_EVENTS_PATH,
        baton_webhook::session_page::SESSIONS_PATH,
        baton_webhook::HUBSPOT_EVENTS_PATH,
    ] {
        let path = route.trim_start_matches('/');
        assert!(
            t.contains(&format!(
                "- !Sub \"${{WebhookFunctionUrl.FunctionUrl}}{path}\""
            )) && t.contains(&format!("${{AWS::URLSuffix}}/{path}\"")),
            "an output for {route} under either front door"
        );
    }
    for var in [
        TABLE_NAME,
        MEDIA_BUCKET,
        SECRET_ARN,
        PUBLIC_BASE_URL,
        SESSION_LINK_TTL_DAYS,
    ] {
        assert!(webhook.contains(&format!("{var}: ")), "webhook env {var}");
    }
    assert!(
        webhook.contains("${Secrets},${SessionLinkSecret}"),
        "the webhook reads the session link key"
    );
    assert!(
        webhook.contains("s3:GetObject"),
        "presigning needs GetObject"
    );
    // The insights model: named by a parameter, invoked with IAM, and only that model.
    let handoff = resource(&t, "HandoffFunction");
    // No conversation waits for another: batches of a shard run side by side (each conversation
    // stays in one, in order), and media copies run from their own queue.
    assert_eq!(
        t.matches("ParallelizationFactor: 10").count(),
        2,
        "both stream mappings"
    );
    assert!(!t.contains("ParallelizationFactor: 1\n"));
    for want in [
        "MEDIA_COPY_QUEUE_URL: !Ref MediaCopies",
        "Type: SQS",
        "Queue: !GetAtt MediaCopies.Arn",
        "Resource: !GetAtt MediaCopies.Arn",
    ] {
        assert!(handoff.contains(want), "handoff function: {want}");
    }
    let copies = resource(&t, "MediaCopies");
    assert!(copies.contains("deadLetterTargetArn: !GetAtt MediaCopyFailures.Arn"));
    let visibility: u32 = copies
        .split("VisibilityTimeout: ")
        .nth(1)
        .and_then(|v| v.lines().next())
        .and_then(|v| v.trim().parse().ok())
        .expect("the copy queue's visibility timeout");
    assert!(
        visibility >= 6 * 300,
        "six times the function's 300 s timeout: {visibility}"
    );
    for var in [BEDROCK_MODEL_ID, BEDROCK_TIMEOUT_MS] {
        assert!(handoff.contains(&format!("{var}: ")), "handoff env {var}");
    }
    assert!(t.contains(&format!(
        "BedrockModelId:\n    Type: String\n    Default: {}",
        baton_handoff::bedrock::DEFAULT_MODEL
    )));
    assert!(handoff.contains("Action: bedrock:InvokeModel"));
    assert!(handoff.contains("inference-profile/${BedrockModelId}"));
    assert!(handoff.contains("bedrock:InferenceProfileArn:"));
    assert!(!handoff.contains("bedrock:*\n"), "no wildcard action");
    let hubspot = resource(&t, "HubspotFunction");
    assert!(hubspot.contains("ReservedConcurrentExecutions: !Ref HubspotConcurrency"));
    // Replies go out from the HubSpot function; it tells the agent; it writes ticket events.
    for var in [
        GRAPH_API_VERSION,
        REPLY_TEMPLATE,
        REPLY_TEMPLATE_LANGUAGE,
        REPLY_TEMPLATE_PARAMS,
        AGENT_WEBHOOK_URL,
        baton_hubspot::config::CREDENTIAL,
        baton_hubspot::config::TICKET_DEFAULTS,
        baton_hubspot::config::CONTACT_DEFAULTS,
        baton_hubspot::config::THREAD_HANDBACK,
        baton_hubspot::config::THREAD_CONTROL_URL,
    ] {
        assert!(hubspot.contains(&format!("{var}: ")), "hubspot env {var}");
    }
    for action in ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"] {
        assert!(hubspot.contains(action), "hubspot needs {action}");
    }
    // Every function gets the retention and the metrics namespace.
    let globals = &t[t.find("Globals:").unwrap()..t.find("Resources:").unwrap()];
    for var in [RETENTION_DAYS, baton_shared::observe::METRICS_NAMESPACE] {
        assert!(globals.contains(&format!("{var}: ")), "global env {var}");
    }
    let table = resource(&t, "Table");
    assert!(table.contains(&format!(
        "AttributeName: {}\n        Enabled: true",
        baton_shared::store::dynamodb::EXPIRES_AT
    )));
    let bucket = resource(&t, "MediaBucket");
    assert!(bucket.contains("ExpirationInDays: !Ref RetentionDays"));
    // Alarms on each function's errors, throttles where they hurt, and the consumers' lag.
    for alarm in [
        "WebhookErrorsAlarm",
        "HandoffErrorsAlarm",
        "HubspotErrorsAlarm",
        "WebhookThrottlesAlarm",
        "HandoffThrottlesAlarm",
        "HandoffIteratorAgeAlarm",
        "HubspotIteratorAgeAlarm",
        "HandoffFailuresAlarm",
        "HubspotFailuresAlarm",
        "HubspotParkedAlarm",
        "TicketEventsParkedAlarm",
    ] {
        assert!(
            resource(&t, alarm).contains("AWS::CloudWatch::Alarm"),
            "{alarm}"
        );
    }
    for output in [
        "WebhookUrl",
        "AgentEventsUrl",
        "SessionPagesUrl",
        "HubspotEventsUrl",
    ] {
        assert!(t.contains(&format!("\n  {output}:\n")), "output {output}");
    }
}
