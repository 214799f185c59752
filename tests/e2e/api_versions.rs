//! HubSpot's v1–v4 paths go unsupported in 2027 (v4 on 30 March): no production code may call a
//! legacy CRM or Files path. The test HubSpot server refuses them too, so a path built at run
//! time is caught by every test that reaches it; this catches one no test reaches.

use std::path::{Path, PathBuf};

const LEGACY: &[&str] = &["/crm/v3", "/crm/v4", "/files/v3", "crm/v3/", "crm/v4/"];

/// Production sources: every crate's `src/`, not its tests, benches or the test kit.
fn production_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = ["shared/src", "functions", "local/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !["tests", "benches", "target"].contains(&name.as_str()) {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    out
}

/// The code outside `#[cfg(test)]` modules (they sit at the end of a file, by the house style).
fn without_unit_tests(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

#[test]
fn no_production_code_calls_a_legacy_hubspot_path() {
    let sources = production_sources();
    assert!(
        sources
            .iter()
            .any(|p| p.ends_with("functions/hubspot/src/api.rs")),
        "the scan must reach the HubSpot API module"
    );
    let mut found = Vec::new();
    for path in &sources {
        let text = std::fs::read_to_string(path).unwrap();
        for (n, line) in without_unit_tests(&text).lines().enumerate() {
            if LEGACY.iter().any(|l| line.contains(l)) {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "legacy HubSpot paths:\n{}",
        found.join("\n")
    );
}
