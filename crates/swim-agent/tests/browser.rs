//! The page at `/` in a real headless browser (Debian's Chromium, driven
//! through chromedriver's WebDriver API on loopback): it loads, shows the
//! members of a three-node cluster, and — without being reloaded — shows
//! one of them as left after it is stopped with SIGTERM.
//!
//! Needs `chromium` and `chromium-driver`, so it is ignored by a plain
//! `cargo test`; `.ci/run` installs both and runs it with
//! `cargo test -p swim-agent --test browser -- --ignored`.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{get, http, rust_agent, Agent};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

/// chromedriver on a loopback port, and one browser session through it.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`chromedriver` not found: apt-get install chromium chromium-driver");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + T;
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("chromium-profile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1200,800",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
        };
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; returns its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let response = http(self.addr, method, path, body.as_deref());
        let value = response.json()["value"].clone();
        assert_eq!(response.status, 200, "{method} {path}: {value}");
        value
    }

    fn go(&self, url: &str) {
        let path = format!("/session/{}/url", self.session);
        self.call("POST", &path, Some(json!({"url": url})));
    }

    /// Runs `script` in the page and returns what it returns.
    fn run(&self, script: &str) -> Value {
        let path = format!("/session/{}/execute/sync", self.session);
        self.call("POST", &path, Some(json!({"script": script, "args": []})))
    }

    /// Polls `script` until `cond` holds for its result.
    fn wait(&self, what: &str, script: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + T;
        loop {
            let value = self.run(script);
            if cond(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "the page showed no {what} within {T:?}; last: {value}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(|| http(self.addr, "DELETE", &path, None));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The member rows the page shows, as "name:state".
const ROWS: &str = "return Array.from(document.querySelectorAll('#members tr'))\
    .map(r => r.dataset.member + ':' + r.dataset.state);";

#[test]
#[ignore = "needs chromium and chromedriver: see .ci/run"]
fn the_page_shows_the_cluster_and_follows_a_leave() {
    let agent = rust_agent();
    let info = [("RUST_LOG", "info")];
    let a = Agent::start_with(
        &agent,
        "a",
        &["--preset", "local", "--http", "127.0.0.1:0"],
        &info,
    );
    let addr = a.http_addr();
    let seed = a.addr.clone();
    let join = ["--preset", "local", "--join", seed.as_str()];
    let mut b = Agent::start_with(&agent, "b", &join, &info);
    let mut c = Agent::start_with(&agent, "c", &join, &info);
    b.wait_for(T, "joined", |v| v["event"] == "joined");
    c.wait_for(T, "joined", |v| v["event"] == "joined");
    assert_eq!(get(addr, "/v1/health").status, 200);

    let browser = Browser::start();
    browser.go(&format!("http://{addr}/"));
    let title = browser.run("return document.title;");
    assert_eq!(title, "swim-agent");
    browser.wait("a, b and c alive", ROWS, |rows| {
        *rows == json!(["a:alive", "b:alive", "c:alive"])
    });
    let heading = browser.run("return document.getElementById('node').textContent;");
    assert!(
        heading.as_str().unwrap().starts_with("a ("),
        "heading: {heading}"
    );
    browser.wait(
        "a healthy node",
        "return document.getElementById('status').textContent;",
        |s| s == "running",
    );
    // A mark on this page instance: if it is still there at the end, the
    // page updated itself rather than being loaded again.
    browser.run("window.swimTestMark = 'first-load'; return null;");
    let first_update = browser.run("return document.getElementById('updated').textContent;");

    c.signal(Signal::SIGTERM);
    assert_eq!(c.wait_exit(T).code(), Some(0));
    let rows = browser.wait("c as left", ROWS, |rows| {
        rows.as_array()
            .is_some_and(|r| r.contains(&json!("c:left")))
    });
    assert_eq!(rows, json!(["a:alive", "b:alive", "c:left"]));
    browser.wait(
        "the leave among the recent events",
        "return Array.from(document.querySelectorAll('#events li'))\
            .map(li => li.dataset.kind + ' ' + li.textContent);",
        |events| {
            events.as_array().is_some_and(|e| {
                e.iter().any(|t| {
                    t.as_str()
                        .is_some_and(|t| t.starts_with("left ") && t.contains(" left c:"))
                })
            })
        },
    );
    // Times are ISO 8601 with the zone's offset, to the millisecond.
    let when =
        browser.run("return document.querySelector('#events li').textContent.split(' ')[0];");
    let when = when.as_str().unwrap();
    assert!(
        when.len() == 29 && when.as_bytes()[10] == b'T' && when[23..].starts_with(['+', '-']),
        "{when}"
    );
    assert_eq!(browser.run("return window.swimTestMark;"), "first-load");
    let last_update = browser.run("return document.getElementById('updated').textContent;");
    assert_ne!(first_update, last_update, "the page kept refreshing");
    let counts = browser.run("return document.getElementById('counts').textContent;");
    assert!(
        counts.as_str().unwrap().contains("2 alive") && counts.as_str().unwrap().contains("1 left"),
        "{counts}"
    );
    drop(browser);
    b.quit();
    a.quit();
}
