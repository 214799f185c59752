//! `baton-local`: run Baton without AWS. Wiring only; see the library for what it does.

use std::io::Write;
use std::process::ExitCode;

use baton_local::{LocalConfig, Stage, banner, run_stage};
use baton_shared::config::{self, ProcessEnv};
use baton_webhook::replay_deliveries;

const USAGE: &str = "\
usage: baton-local [serve]         serve the webhook on BATON_LISTEN (default 127.0.0.1:3000) and
                             run the handoff and HubSpot stages
       baton-local demo          play a sample conversation end to end and print the ticket and note
       baton-local replay        store again every kept delivery that could not be read completely
       baton-local hubspot-replay
                             deliver again every parked or retrying handoff (after fixing the cause)
       baton-local doctor [--stack NAME]
                             check the set-up: WhatsApp token and number, secrets, HubSpot token
                             and scopes, pipeline and stage, properties, the webhook's handshake,
                             and (with --stack or TABLE_NAME) the table, bucket and queues
       baton-local smoke [--stack NAME] [--cleanup] [--timeout SECONDS]
                             send a test handoff to the deployed (or local) webhook and check the
                             ticket, contact, note and session link in HubSpot
       baton-local forget-customer NUMBER-OR-USER-ID
                             delete everything stored about one customer (table items, media
                             copies, transcripts) and print what was deleted

Settings come from the environment; see the README's Configuration table.";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map_or("serve", String::as_str);
    if matches!(command, "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if matches!(command, "doctor" | "smoke") {
        return check(command, &args[1..]).await;
    }
    let arity_ok = match command {
        "forget-customer" => args.len() == 2,
        _ => args.len() <= 1,
    };
    if !matches!(
        command,
        "serve" | "replay" | "demo" | "hubspot-replay" | "forget-customer"
    ) || !arity_ok
    {
        eprintln!(
            "baton-local: unknown command {:?}\n\n{USAGE}",
            args.join(" ")
        );
        return ExitCode::from(2);
    }
    let cfg = match LocalConfig::from_source(&ProcessEnv) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("baton-local: {e}");
            return ExitCode::from(2);
        }
    };
    // The demo opens the store itself (the embedded one takes one opener at a time).
    if command == "demo" {
        return match baton_local::demo::run(&cfg).await {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("baton-local: the demo stopped: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if command == "forget-customer" {
        return match cfg.forget_customer(&args[1]).await {
            Ok(report) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialisable")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("baton-local: forget-customer stopped: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let stores = match cfg.open_store().await {
        Ok(stores) => stores,
        Err(e) => {
            eprintln!(
                "baton-local: cannot open the store ({}): {e}",
                cfg.describe_store()
            );
            return ExitCode::FAILURE;
        }
    };
    if command == "hubspot-replay" {
        let deliverer = match cfg.deliverer(stores.trails.clone()).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("baton-local: cannot start the HubSpot stage: {e}");
                return ExitCode::FAILURE;
            }
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
        let report = baton_hubspot::replay::replay(
            &deliverer,
            stores.handoff.as_ref(),
            stores.trails.as_ref(),
            deadline,
        )
        .await;
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serialisable")
        );
        return if report.failed == 0 && report.parked == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if command == "replay" {
        return match replay_deliveries(stores.store.as_ref(), usize::MAX).await {
            Ok(summary) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&summary).expect("serialisable")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("baton-local: replay stopped: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "baton-local: cannot listen on {} (BATON_LISTEN): {e}",
                cfg.listen
            );
            return ExitCode::FAILURE;
        }
    };
    let bound = listener.local_addr().unwrap_or(cfg.listen);
    // A closed stdout (a piped reader gone) must not stop the server.
    let _ = writeln!(std::io::stdout().lock(), "{}", banner(&cfg, bound));
    let processor = match cfg.processor(stores.handoff.clone()).await {
        Ok(p) => std::sync::Arc::new(p),
        Err(e) => {
            eprintln!("baton-local: cannot start the handoff stage: {e}");
            return ExitCode::FAILURE;
        }
    };
    let deliverer = match cfg.deliverer(stores.trails.clone()).await {
        Ok(d) => std::sync::Arc::new(d),
        Err(e) => {
            eprintln!("baton-local: cannot start the HubSpot stage: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(run_stage(
        Stage::Handoff(processor),
        stores.feed.clone(),
        cfg.data_dir.clone(),
    ));
    tokio::spawn(run_stage(
        Stage::Hubspot(deliverer),
        stores.feed.clone(),
        cfg.data_dir.clone(),
    ));
    let app = match cfg.webhook(&stores).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("baton-local: cannot start the session pages: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baton-local: server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `doctor` and `smoke`: the environment's settings, or the deployed stack's with `--stack`.
async fn check(command: &str, args: &[String]) -> ExitCode {
    let mut stack = None;
    let mut opts = baton_local::smoke::Options::default();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match (a.as_str(), command) {
            ("--stack", _) => stack = rest.next().cloned(),
            ("--cleanup", "smoke") => opts.cleanup = true,
            ("--timeout", "smoke") => match rest.next().and_then(|t| t.parse().ok()) {
                Some(secs) => opts.timeout = std::time::Duration::from_secs(secs),
                None => {
                    eprintln!("baton-local: --timeout takes a number of seconds\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("baton-local: unknown argument {a:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let aws = baton_shared::retry::load_aws().await;
    let stack_settings = match &stack {
        Some(name) => match baton_local::doctor::stack_settings(&aws, name).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("baton-local: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Default::default(),
    };
    let src = baton_local::doctor::Layered {
        first: stack_settings,
        then: &ProcessEnv,
    };
    let report = if command == "doctor" {
        let with_aws = stack.is_some() || config::optional(&src, config::TABLE_NAME).is_some();
        baton_local::doctor::run(&src, with_aws.then_some(&aws)).await
    } else {
        baton_local::smoke::run(&src, &opts).await
    };
    print!("{}", report.render());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
