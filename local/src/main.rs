//! `baton-local`: run Baton without AWS. Wiring only; see the library for what it does.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use baton_local::{LocalConfig, Stage, Stores, banner, run_stage};
use baton_shared::config::{self, ProcessEnv};
use baton_webhook::replay_deliveries;

const USAGE: &str = "\
usage: baton-local [serve]         serve the webhook on BATON_LISTEN (default 127.0.0.1:3000) and
                             run the handoff and HubSpot stages
       baton-local demo          play a sample conversation end to end and print the ticket and note
       baton-local replay        store again every kept delivery that could not be read completely
       baton-local hubspot-replay
                             deliver again every parked or retrying handoff (after fixing the cause)
       baton-local doctor [--stack NAME] [--fix]
                             check the set-up: WhatsApp token, number and Baton's subscription to
                             the business account (--fix subscribes it), secrets, the HubSpot
                             credential and its scopes, pipeline and stage, properties, the
                             webhook's handshake and a signed HubSpot event, and (with --stack or
                             TABLE_NAME) the table, bucket and queues
       baton-local hubspot-app [--stack NAME] [--account PORTAL_ID] [--dir DIR]
                             write Baton's HubSpot app project (hubspot-app/) with the stack's
                             events URL, and print the hs commands that upload and install it
       baton-local smoke [--stack NAME] [--cleanup] [--timeout SECONDS]
                             send a test handoff to the deployed (or local) webhook and check the
                             ticket, contact, note and session link in HubSpot
       baton-local forget-customer NUMBER-OR-USER-ID
                             delete everything stored about one customer (table items, media
                             copies, transcripts) and print what was deleted

Settings come from the environment; see the README's Configuration table.";

/// What the command line asks for.
enum Command {
    Help,
    Serve,
    Demo,
    Replay,
    HubspotReplay,
    ForgetCustomer(String),
    /// `doctor`, `smoke` or `hubspot-app`, with their own arguments.
    Check(String, Vec<String>),
}

impl Command {
    fn parse(args: &[String]) -> Option<Self> {
        let rest = args.get(1..).unwrap_or_default();
        Some(match (args.first().map_or("serve", String::as_str), rest) {
            ("-h" | "--help" | "help", _) => Self::Help,
            (check @ ("doctor" | "smoke" | "hubspot-app"), rest) => {
                Self::Check(check.to_owned(), rest.to_vec())
            }
            ("forget-customer", [who]) => Self::ForgetCustomer(who.clone()),
            ("serve", []) => Self::Serve,
            ("demo", []) => Self::Demo,
            ("replay", []) => Self::Replay,
            ("hubspot-replay", []) => Self::HubspotReplay,
            _ => return None,
        })
    }
}

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
    let Some(command) = Command::parse(&args) else {
        eprintln!(
            "baton-local: unknown command {:?}\n\n{USAGE}",
            args.join(" ")
        );
        return ExitCode::from(2);
    };
    let cfg = match command {
        Command::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Command::Check(check, rest) => return self::check(&check, &rest).await,
        _ => match LocalConfig::from_source(&ProcessEnv) {
            Ok(cfg) => cfg,
            Err(e) => {
                eprintln!("baton-local: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match command {
        // The demo opens the store itself (the embedded one takes one opener at a time).
        Command::Demo => match baton_local::demo::run(&cfg).await {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => stopped("the demo stopped", e),
        },
        Command::ForgetCustomer(who) => match cfg.forget_customer(&who).await {
            Ok(report) => print_json(&report, true),
            Err(e) => stopped("forget-customer stopped", e),
        },
        Command::Replay | Command::HubspotReplay | Command::Serve => {
            let stores = match cfg.open_store().await {
                Ok(stores) => stores,
                Err(e) => {
                    let what = format!("cannot open the store ({})", cfg.describe_store());
                    return stopped(&what, e);
                }
            };
            match command {
                Command::Replay => {
                    match replay_deliveries(stores.store.as_ref(), usize::MAX).await {
                        Ok(summary) => print_json(&summary, true),
                        Err(e) => stopped("replay stopped", e),
                    }
                }
                Command::HubspotReplay => hubspot_replay(&cfg, &stores).await,
                _ => serve(&cfg, &stores).await,
            }
        }
        Command::Help | Command::Check(..) => unreachable!("answered above"),
    }
}

/// Prints `value` as JSON; the exit code says whether all went well.
fn print_json(value: &impl serde::Serialize, ok: bool) -> ExitCode {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("serialisable")
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Says what stopped and why, and fails.
fn stopped(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("baton-local: {what}: {e}");
    ExitCode::FAILURE
}

/// `hubspot-replay`: every parked or retrying handoff and ticket event, run again.
async fn hubspot_replay(cfg: &LocalConfig, stores: &Stores) -> ExitCode {
    let deliverer = match cfg.deliverer(stores.trails.clone()).await {
        Ok(d) => d,
        Err(e) => return stopped("cannot start the HubSpot stage", e),
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    let report = baton_hubspot::replay::replay(
        &deliverer,
        stores.handoff.as_ref(),
        stores.trails.as_ref(),
        deadline,
    )
    .await;
    print_json(&report, report.failed == 0 && report.parked == 0)
}

/// `serve`: the webhook on `BATON_LISTEN`, the handoff and HubSpot stages beside it.
async fn serve(cfg: &LocalConfig, stores: &Stores) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            return stopped(
                &format!("cannot listen on {} (BATON_LISTEN)", cfg.listen),
                e,
            );
        }
    };
    let bound = listener.local_addr().unwrap_or(cfg.listen);
    let cfg = &cfg.bound_to(bound);
    // A closed stdout (a piped reader gone) must not stop the server.
    let _ = writeln!(std::io::stdout().lock(), "{}", banner(cfg, bound));
    let processor = match cfg.processor(stores.handoff.clone()).await {
        Ok(p) => p,
        Err(e) => return stopped("cannot start the handoff stage", e),
    };
    let deliverer = match cfg.deliverer(stores.trails.clone()).await {
        Ok(d) => Arc::new(d),
        Err(e) => return stopped("cannot start the HubSpot stage", e),
    };
    for stage in [Stage::Handoff(processor), Stage::Hubspot(deliverer)] {
        tokio::spawn(run_stage(stage, stores.feed.clone(), cfg.data_dir.clone()));
    }
    let app = match cfg.webhook(stores).await {
        Ok(app) => app,
        Err(e) => return stopped("cannot start the session pages", e),
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => stopped("server stopped", e),
    }
}

/// `doctor`, `smoke` and `hubspot-app`: the environment's settings, or the deployed stack's with
/// `--stack`. AWS is only loaded when something on AWS is to be read.
async fn check(command: &str, args: &[String]) -> ExitCode {
    let mut stack = None;
    let mut opts = baton_local::smoke::Options::default();
    let mut doctor = baton_local::doctor::Options::default();
    let mut app = baton_local::hubspot_app::Options::default();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        let mut value = |what: &str| {
            let v = rest.next().cloned().filter(|v| !v.starts_with("--"));
            if v.is_none() {
                eprintln!("baton-local: {a} takes {what}\n\n{USAGE}");
            }
            v
        };
        let ok = match (a.as_str(), command) {
            ("--stack", _) => value("a stack name").map(|v| stack = Some(v)).is_some(),
            ("--cleanup", "smoke") => {
                opts.cleanup = true;
                true
            }
            ("--timeout", "smoke") => match value("a number of seconds").map(|t| t.parse()) {
                Some(Ok(secs)) => {
                    opts.timeout = std::time::Duration::from_secs(secs);
                    true
                }
                Some(Err(_)) => {
                    eprintln!("baton-local: --timeout takes a number of seconds\n\n{USAGE}");
                    false
                }
                None => false,
            },
            ("--fix", "doctor") => {
                doctor.fix = true;
                true
            }
            ("--account", "hubspot-app") => match value("the portal's id").map(|t| t.parse()) {
                Some(Ok(id)) => {
                    app.account = Some(id);
                    true
                }
                Some(Err(_)) => {
                    eprintln!("baton-local: --account takes the portal's id (a number)\n\n{USAGE}");
                    false
                }
                None => false,
            },
            ("--dir", "hubspot-app") => value("a directory").map(|d| app.dir = d.into()).is_some(),
            _ => {
                eprintln!("baton-local: {command}: unknown argument {a:?}\n\n{USAGE}");
                false
            }
        };
        if !ok {
            return ExitCode::from(2);
        }
    }
    let needs_aws =
        stack.is_some() || (command == "doctor" && std::env::var_os(config::TABLE_NAME).is_some());
    let aws = match needs_aws {
        true => Some(baton_shared::retry::load_aws().await),
        false => None,
    };
    let stack_settings = match (&stack, &aws) {
        (Some(name), Some(aws)) => match baton_local::doctor::stack_settings(aws, name).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("baton-local: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => Default::default(),
    };
    let src = baton_local::doctor::Layered {
        first: stack_settings,
        then: &ProcessEnv,
    };
    let report = match command {
        "doctor" => baton_local::doctor::run(&src, aws.as_ref(), doctor).await,
        "hubspot-app" => {
            return match baton_local::hubspot_app::write(&src, &app).await {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => stopped("hubspot-app", e),
            };
        }
        _ => baton_local::smoke::run(&src, &opts).await,
    };
    print!("{}", report.render());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
