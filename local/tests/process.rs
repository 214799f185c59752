//! The real `baton-local` binary: it starts with no settings, prints what to paste into Meta's
//! dashboard and a request that works, answers the handshake, and loses nothing when killed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Running {
    child: Child,
    url: String,
    verify_token: String,
    signature: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton-local"));
    cmd.env("BATON_DATA_DIR", data_dir)
        .env("BATON_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    for var in [
        "TABLE_NAME",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
        "PUBLIC_BASE_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn start(data_dir: &Path) -> Running {
    let mut child = command(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut verify_token, mut signature) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Baton (local) is listening on ") {
            url = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.trim().strip_prefix("Verify token: ") {
            verify_token = Some(rest.trim().to_owned());
        }
        if let Some(at) = line.find("X-Hub-Signature-256: ") {
            signature = Some(
                line[at + 21..]
                    .trim()
                    .trim_end_matches(['\'', '\\', ' '])
                    .to_owned(),
            );
        }
        if line.contains("--data-binary") {
            break;
        }
    }
    // Keep reading so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Running {
        child,
        url: url.expect("banner names the URL"),
        verify_token: verify_token.expect("banner names the verify token"),
        signature: signature.expect("banner shows a signed example"),
    }
}

async fn post_sample(r: &Running) -> serde_json::Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/webhook", r.url))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", &r.signature)
        .body(baton_local::sample_delivery())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("baton-local-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test]
async fn starts_with_no_settings_answers_meta_and_survives_a_crash() {
    let dir = temp_dir("crash");
    let first = start(&dir);
    assert_eq!(first.verify_token.len(), 32);

    let http = reqwest::Client::new();
    let handshake = |token: &str| {
        format!(
            "{}/webhook?hub.mode=subscribe&hub.challenge=4242&hub.verify_token={token}",
            first.url
        )
    };
    let resp = http
        .get(handshake(&first.verify_token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "4242");
    assert_eq!(
        http.get(handshake("wrong")).send().await.unwrap().status(),
        403
    );

    // The printed example works as printed.
    let answer = post_sample(&first).await;
    assert_eq!(
        (
            answer["messages_new"].as_u64(),
            answer["duplicate_delivery"].as_bool()
        ),
        (Some(1), Some(false))
    );
    let unsigned = http
        .post(format!("{}/webhook", first.url))
        .body(baton_local::sample_delivery())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let huge = http
        .post(format!("{}/webhook", first.url))
        .header("x-hub-signature-256", &first.signature)
        .body(vec![b' '; 4 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);

    // The sample asks for a person: the handoff stage writes its transcript.
    let transcripts = dir.join("objects").join("transcripts");
    let mut written = Vec::new();
    for _ in 0..100 {
        written = std::fs::read_dir(&transcripts)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        if !written.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        written.len(),
        1,
        "one handoff transcript under {}",
        transcripts.display()
    );
    let transcript = std::fs::read_to_string(&written[0]).unwrap();
    assert!(
        transcript.contains("Customer (Test Customer): Hello! Can I talk to a person?"),
        "{transcript}"
    );

    // The ticket the HubSpot stage would create links to the session on the port the system
    // chose for BATON_LISTEN=127.0.0.1:0, and the link opens the page.
    let outbox = dir.join("hubspot-outbox");
    let mut ticket = None;
    for _ in 0..100 {
        ticket = std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(Result::ok).map(|e| e.path()).find(|p| {
                    p.to_string_lossy()
                        .ends_with("-post-crm-objects-2026-09-tickets.json")
                })
            })
            .unwrap_or_default();
        if ticket.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let request: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ticket.expect("a ticket request in the outbox")).unwrap(),
    )
    .unwrap();
    let link = request["body"]["properties"]["baton_session_url"]
        .as_str()
        .expect("the ticket carries the session link")
        .to_owned();
    assert!(
        link.starts_with(&format!("{}/sessions/", first.url)),
        "{link} is not on {}",
        first.url
    );
    assert!(!link.contains(":0/"), "{link}");
    let page = http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200, "{link}");

    // Killed without warning, then started again on the same data: same token, nothing lost.
    let token = first.verify_token.clone();
    drop(first);
    let second = start(&dir);
    assert_eq!(second.verify_token, token);
    let answer = post_sample(&second).await;
    assert_eq!(
        (
            answer["messages_duplicate"].as_u64(),
            answer["duplicate_delivery"].as_bool()
        ),
        (Some(1), Some(true)),
        "{answer}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        std::fs::read_dir(&transcripts).unwrap().count(),
        1,
        "the restart processes nothing twice"
    );
    drop(second);

    // The replay command runs on the same data.
    let out = command(&dir).arg("replay").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["deliveries"], 0);
}

#[test]
fn the_demo_command_plays_a_conversation_on_its_embedded_defaults() {
    let out = command(&temp_dir("demo"))
        .env_remove("HUBSPOT_ACCESS_TOKEN")
        .arg("demo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("HubSpot: done (contact outbox-"), "{text}");
    assert!(
        text.contains("Follow-up (the customer wrote again): done"),
        "{text}"
    );
}

#[test]
fn a_bad_setting_stops_start_up_and_is_named() {
    let out = command(&temp_dir("bad-listen"))
        .env("BATON_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BATON_LISTEN is invalid"), "{err}");
    let out = command(&temp_dir("bad-command"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = command(&temp_dir("bad-timeout"))
        .args(["smoke", "--timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout takes a number of seconds"));
    // The doctor with nothing configured: every failure named, exit code 1, no stack needed.
    // Nor AWS: no AWS settings, and not a word about regions or instance metadata.
    let mut doctor = command(&temp_dir("doctor-empty"));
    for var in [
        "HUBSPOT_ACCESS_TOKEN",
        "WHATSAPP_ACCESS_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "RUST_LOG",
    ] {
        doctor.env_remove(var);
    }
    let out = doctor
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "✗ WHATSAPP_APP_SECRET is not set",
        "✗ WHATSAPP_ACCESS_TOKEN is not set",
        "✗ HUBSPOT_ACCESS_TOKEN is not set",
        "✗ PUBLIC_BASE_URL is not set",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    for word in ["region", "imds", "credentials"] {
        assert!(
            !err.contains(word),
            "{word:?} in the doctor's stderr:\n{err}"
        );
    }
}
