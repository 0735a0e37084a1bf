//! The shipped reverse-proxy configurations (`deploy/nginx.conf`, `deploy/Caddyfile`), run for real
//! on free ports in front of the service, adapted only to plain HTTP (no certificates here):
//! `/metrics` with any suffix is refused, everything else reaches the service.
//! A proxy that is not installed fails the test under `CI=true` (where `.ci/run` installs it) and
//! is skipped, saying so, elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestApp;

fn deploy(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(name),
    )
    .unwrap()
}

/// Whether `program` runs; if not, fails under CI and says it skipped otherwise.
fn available(program: &str, version_arg: &str, package: &str) -> bool {
    if Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        return true;
    }
    let why = format!("{program} is not installed (apt-get install {package})");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}: .ci/run installs it, so CI must have it");
    }
    eprintln!("skipped: {why}");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A proxy process, stopped (SIGTERM, then waited for) when dropped.
struct Proxy {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until the proxy passes /healthz through to the service.
async fn until_up(proxy: &mut Proxy) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{}/healthz", proxy.base)).send().await
            && r.status().as_u16() == 200
        {
            return;
        }
        if let Ok(Some(status)) = proxy.child.try_wait() {
            panic!(
                "the proxy exited ({status}): {}",
                std::fs::read_to_string(&proxy.log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the proxy did not pass /healthz on within 30 s: {}",
            std::fs::read_to_string(&proxy.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts the service itself serves metrics, and that through the proxy no form of the path
/// reaches them while other routes work.
async fn assert_metrics_blocked(app: &TestApp, proxy: &Proxy) {
    let client = reqwest::Client::new();
    let direct = client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 200);
    assert!(direct.text().await.unwrap().contains("quicket_followup_"));
    for path in [
        "/metrics",
        "/metrics/",
        "/metrics/x",
        "/metrics?format=prometheus",
        "/metrics/..%2f",
        "/%6detrics",
        "//metrics",
    ] {
        let response = client
            .get(format!("{}{path}", proxy.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status >= 400 && !body.contains("quicket_followup_"),
            "{path} through the proxy: {status} {body}"
        );
    }
    let health = client
        .get(format!("{}/healthz", proxy.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let hook = client
        .post(format!("{}/webhooks/quicket/{}", proxy.base, common::TOKEN))
        .body(common::hook("REF-P", "checkout_started"))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status().as_u16(), 200, "the webhook passes");
}

/// The HTTPS server block of deploy/nginx.conf on plain HTTP at `port`, in front of `upstream`.
fn nginx_conf(dir: &Path, port: u16, upstream: &str) -> String {
    let shipped = deploy("nginx.conf");
    let https = &shipped[shipped.find("listen 443").unwrap()..];
    let https = &shipped[shipped[..shipped.len() - https.len()]
        .rfind("server {")
        .unwrap()..];
    let mut block = String::new();
    let mut listened = false;
    for line in https.lines() {
        let t = line.trim();
        if t.starts_with("listen ") {
            if !listened {
                block.push_str(&format!("    listen 127.0.0.1:{port};\n"));
                listened = true;
            }
        } else if !t.starts_with("ssl_") {
            block.push_str(&line.replace("127.0.0.1:8080", upstream));
            block.push('\n');
        }
    }
    let d = dir.display();
    format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
         scgi_temp_path {d}/scgi;\n{block}}}\n"
    )
}

#[tokio::test]
async fn nginx_with_the_shipped_config_blocks_metrics_with_any_suffix() {
    if !available("nginx", "-v", "nginx") {
        return;
    }
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    // nginx's workers run as another user when the tests run as root.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let port = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        nginx_conf(dir.path(), port, &app.service.addr.to_string()),
    )
    .unwrap();
    let log = dir.path().join("error.log");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let mut proxy = Proxy {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log: dir.path().join("stderr.log"),
    };
    until_up(&mut proxy).await;
    assert_metrics_blocked(&app, &proxy).await;
}

/// deploy/Caddyfile on plain HTTP at `port`, in front of `upstream`, with no admin endpoint.
fn caddyfile(port: u16, upstream: &str) -> String {
    let shipped = deploy("Caddyfile");
    assert!(shipped.contains("tickets.example.co.za {"));
    let site = shipped
        .replace(
            "tickets.example.co.za {",
            &format!("http://127.0.0.1:{port} {{"),
        )
        .replace("127.0.0.1:8080", upstream);
    format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}")
}

#[tokio::test]
async fn caddy_with_the_shipped_config_blocks_metrics_with_any_suffix() {
    if !available("caddy", "version", "caddy") {
        return;
    }
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("Caddyfile");
    std::fs::write(&file, caddyfile(port, &app.service.addr.to_string())).unwrap();
    let log = dir.path().join("caddy.log");
    let child = Command::new("caddy")
        .arg("run")
        .arg("--config")
        .arg(&file)
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut proxy = Proxy {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    until_up(&mut proxy).await;
    assert_metrics_blocked(&app, &proxy).await;
}
