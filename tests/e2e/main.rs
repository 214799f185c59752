//! Baton's end-to-end tests: the webhook function against the embedded store and DynamoDB Local,
//! through its HTTP handler and through a real API Gateway event. Emulator tests read
//! `BATON_TEST_DYNAMODB` (set by scripts/test); without it they are skipped, unless
//! `BATON_REQUIRE_EMULATORS` is set, when they fail.

mod after_handoff;
mod agent_events;
mod api_versions;
mod browser;
mod handoff;
mod hubspot;
mod insights;
mod lambda;
mod privacy;
mod secrets;
mod session_page;
mod setup_checks;
mod store_contract;
mod streams;
mod support;
mod template;
mod webhook;
mod write_units;
