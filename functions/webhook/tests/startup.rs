//! The Lambda binary refuses to start without its settings, and says which one is missing.

use std::process::Command;

fn start(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton-webhook"));
    cmd.env_clear()
        // A runtime API nobody listens on: start-up must fail before it is ever called.
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_LAMBDA_FUNCTION_NAME", "t")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn a_missing_setting_stops_start_up_and_is_named() {
    let (code, out) = start(&[("WHATSAPP_APP_SECRET", "s"), ("WHATSAPP_VERIFY_TOKEN", "t")]);
    assert_ne!(code, Some(0));
    assert!(out.contains("TABLE_NAME"), "{out}");

    let (code, out) = start(&[("TABLE_NAME", "t"), ("WHATSAPP_VERIFY_TOKEN", "t")]);
    assert_ne!(code, Some(0));
    assert!(out.contains("WHATSAPP_APP_SECRET"), "{out}");

    let (code, out) = start(&[("TABLE_NAME", "t"), ("WHATSAPP_APP_SECRET", "s")]);
    assert_ne!(code, Some(0));
    assert!(out.contains("WHATSAPP_VERIFY_TOKEN"), "{out}");
}
