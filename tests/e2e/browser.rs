//! Headless Chromium driven through ChromeDriver's W3C WebDriver protocol (plain HTTP + JSON), for
//! tests that assert on a page as a browser renders it. `scripts/test` installs Debian's
//! `chromium` and `chromium-driver`; without them these tests skip, or fail when
//! `BATON_REQUIRE_EMULATORS` is set.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A browser session; the driver is stopped when it is dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempdir::Dir,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The size of a PNG, read from its header.
pub fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (w, h)
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium with a `width`×`height` viewport (a phone's
    /// emulated below 600 pixels); `None` when they are not installed (and not required).
    pub async fn start(width: u32, height: u32) -> Option<Self> {
        let (chromium, driver) = (
            std::env::var("BATON_TEST_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into()),
            std::env::var("BATON_TEST_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into()),
        );
        if !std::path::Path::new(&chromium).exists() || !std::path::Path::new(&driver).exists() {
            assert!(
                std::env::var_os("BATON_REQUIRE_EMULATORS").is_none(),
                "{chromium} or {driver} is missing; scripts/test installs Debian's chromium and chromium-driver"
            );
            eprintln!("skipped: Chromium or ChromeDriver is not installed");
            return None;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let profile = std::env::temp_dir().join(crate::support::unique("baton-chromium"));
        std::fs::create_dir_all(&profile).unwrap();
        let mut browser = Browser {
            driver: child,
            base,
            session: String::new(),
            http,
            _profile: tempdir::Dir(profile.clone()),
        };
        for _ in 0..100 {
            if browser
                .http
                .get(format!("{}/status", browser.base))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Flags that keep Chromium off the (closed) network and out of the sandbox it cannot use
        // as root.
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut options = json!({"binary": chromium, "args": args});
        if width < 600 {
            // A desktop window is at least 500 pixels wide; a phone's viewport is emulated.
            options["mobileEmulation"] = json!({"deviceMetrics": {
                "width": width, "height": height, "pixelRatio": 1.0, "touch": true, "mobile": true
            }});
        }
        let created = browser
            .call(
                reqwest::Method::POST,
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": options
                }}}),
            )
            .await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Some(browser)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut req = self.http.request(method.clone(), url);
        if method != reqwest::Method::GET {
            req = req.json(&body);
        }
        let answer: Value = req
            .send()
            .await
            .expect("WebDriver answers")
            .json()
            .await
            .expect("WebDriver answers JSON");
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub async fn eval(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Loads every image now (lazy ones below the fold too) and waits until each has finished
    /// loading (or failed), up to 10 s.
    pub async fn images_settled(&self) {
        self.eval("Array.from(document.images).forEach(i => { i.loading = 'eager'; });")
            .await;
        for _ in 0..100 {
            if self
                .eval("return Array.from(document.images).every(i => i.complete);")
                .await
                == json!(true)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("images still loading after 10 s");
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let b64 = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 PNG"))
            .expect("valid base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Best effort: ends Chromium before the driver goes.
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    reqwest::Client::new()
                        .delete(url)
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await
                        .ok()
                })
            })
            .join();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
