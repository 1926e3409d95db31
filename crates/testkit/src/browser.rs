//! A real headless browser for tests: Debian's Chromium driven through
//! chromedriver's W3C WebDriver protocol.
//!
//! WebDriver rather than the DevTools protocol because it is plain HTTP
//! and JSON (no WebSocket client needed), and a small blocking HTTP/1.1
//! client is all it takes. Without chromium and chromedriver installed,
//! [`Browser::start`] returns None unless `LARDER_REQUIRE_BROWSER=1`
//! (set by scripts/test, which installs them), where that is a failure.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session; the browser and its driver stop on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: PathBuf,
}

fn installed(path: &str) -> bool {
    std::path::Path::new(path).exists()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub fn start() -> Option<Browser> {
        let (chromium, driver) = ("/usr/bin/chromium", "/usr/bin/chromedriver");
        if !installed(chromium) || !installed(driver) {
            if std::env::var("LARDER_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
                panic!("LARDER_REQUIRE_BROWSER=1 but chromium and chromedriver are not installed");
            }
            eprintln!("chromium/chromedriver not found: skipping");
            return None;
        }
        Some(Self::launch(chromium, driver).expect("start headless Chromium"))
    }

    fn launch(chromium: &str, driver: &str) -> Result<Browser> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("run chromedriver")?;
        let profile = std::env::temp_dir().join(format!("larder-chromium-{}-{port}", std::process::id()));
        let mut b = Browser { driver: child, port, session: String::new(), profile };
        let deadline = Instant::now() + Duration::from_secs(20);
        while b.call("GET", "/status", None).map(|v| v["ready"] != true).unwrap_or(true) {
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The flags keep Chromium off the network (this machine's is
        // closed) and fit it to running as root in a container.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            &format!("--user-data-dir={}", b.profile.display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        }}});
        let created = b.call("POST", "/session", Some(caps))?;
        b.session = created["sessionId"].as_str().ok_or_else(|| anyhow!("no session id: {created}"))?.to_string();
        Ok(b)
    }

    /// One WebDriver command; returns its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        // chromedriver keeps the connection open whatever the request
        // says, so the body is read by its length, not to the close.
        let mut raw = Vec::new();
        let mut buf = [0u8; 16384];
        let payload = loop {
            let n = crate::read_some(&mut s, &mut buf)?;
            if n == 0 {
                bail!("{method} {path}: connection closed mid-reply");
            }
            raw.extend_from_slice(&buf[..n]);
            let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let body = &raw[split + 4..];
            if head.contains("transfer-encoding: chunked") {
                if body.ends_with(b"0\r\n\r\n") {
                    break dechunk(body)?;
                }
                continue;
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| anyhow!("{method} {path}: reply without a length"))?;
            if body.len() >= len {
                break body[..len].to_vec();
            }
        };
        let v: Value = serde_json::from_slice(&payload).with_context(|| format!("{method} {path}: not JSON"))?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if let Some(err) = value.get("error") {
            bail!("{method} {path}: {err}: {}", value["message"]);
        }
        Ok(value)
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        self.call("POST", &self.session_path("/url"), Some(json!({ "url": url }))).map(|_| ())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// page and returns what it returns.
    pub fn eval(&self, script: &str, args: Value) -> Result<Value> {
        self.call("POST", &self.session_path("/execute/sync"), Some(json!({ "script": script, "args": args })))
    }

    /// Clicks the element `css` selects, as a user would (WebDriver
    /// scrolls it into view and checks it is interactable).
    pub fn click(&self, css: &str) -> Result<()> {
        let found =
            self.call("POST", &self.session_path("/element"), Some(json!({ "using": "css selector", "value": css })))?;
        let id = found[ELEMENT].as_str().ok_or_else(|| anyhow!("{css}: no such element"))?;
        self.call("POST", &self.session_path(&format!("/element/{id}/click")), Some(json!({}))).map(|_| ())
    }

    /// Evaluates `script` until it returns true, or fails after `timeout`.
    pub fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.eval(script, json!([]))? == Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub fn screenshot(&self, path: &std::path::Path) -> Result<()> {
        use base64::Engine;
        let b64 = self.call("GET", &self.session_path("/screenshot"), None)?;
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap_or_default())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n").ok_or_else(|| anyhow!("bad chunk"))?;
        let size = usize::from_str_radix(std::str::from_utf8(&body[..eol])?.trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        let start = eol + 2;
        out.extend_from_slice(body.get(start..start + size).ok_or_else(|| anyhow!("short chunk"))?);
        body = body.get(start + size + 2..).unwrap_or_default();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &self.session_path(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
