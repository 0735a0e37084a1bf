//! The HTTP server holds against slow and many clients: connections that stop mid-header are
//! closed, a slow body is cut, the connection cap holds, and meanwhile hooks and /healthz answer.
//! The timeouts are shortened through their `[server]` keys, never by sleeping in the service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestApp, hook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `bound` passes: then `None`); returns what
/// was read.
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_connections_that_stop_mid_header_are_closed_while_hooks_and_healthz_answer() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_timeout = Duration::from_secs(2);
    })
    .await;
    let addr = app.service.addr;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /webhooks/quicket/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
            .await
            .unwrap();
        slow.push(stream);
    }
    // While they hang: the service answers.
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let (status, body) = app.post_hook(hook("REF-SLOW-1", "checkout_started")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("recorded")));
    // Every one of them is closed by the server, well within 15 s.
    let closed = futures_util::future::join_all(
        slow.iter_mut()
            .map(|s| read_until_closed(s, Duration::from_secs(15))),
    )
    .await;
    let open = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        open, 0,
        "{open} of 300 half-sent connections still open after 15 s"
    );
    // And the service still answers.
    let (status, _) = app.post_hook(hook("REF-SLOW-2", "checkout_started")).await;
    assert_eq!(status, 200);
    app.service.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.service.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let read = read_until_closed(&mut stream, Duration::from_secs(15))
        .await
        .expect("the idle connection was not closed");
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    app.service.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_cut_with_408_and_nothing_is_recorded() {
    let app = TestApp::spawn_with(|c| {
        c.server.body_timeout = Duration::from_secs(1);
    })
    .await;
    let body = hook("REF-TRICKLE", "checkout_started").to_string();
    let mut stream = TcpStream::connect(app.service.addr).await.unwrap();
    let head = format!(
        "POST /webhooks/quicket/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        common::TOKEN,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    // A trickle, one byte at a time, that never completes: still cut at body_timeout.
    let trickle = async {
        for b in &body.as_bytes()[10..body.len() - 1] {
            if stream.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let read = read_until_closed(&mut stream, Duration::from_secs(15))
        .await
        .expect("the slow body was not cut");
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let orders = app
        .store()
        .read(|c| Ok(c.query_row("SELECT count(*) FROM orders", [], |r| r.get::<_, i64>(0))?))
        .await
        .unwrap();
    assert_eq!(orders, 0);
    let (status, _) = app.post_hook(hook("REF-AFTER", "checkout_started")).await;
    assert_eq!(status, 200);
    app.service.stop().await;
}

#[tokio::test]
async fn the_connection_cap_holds_and_a_waiting_client_is_served_once_a_place_frees() {
    let app = TestApp::spawn_with(|c| {
        c.server.max_connections = 4;
    })
    .await;
    let addr = app.service.addr;
    let mut holders = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        holders.push(stream);
    }
    // The fifth connects (the kernel's backlog takes it) but is not served while four are open.
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(1500), fifth.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "a fifth connection was served over a cap of 4"
    );
    drop(holders.pop());
    let read = read_until_closed(&mut fifth, Duration::from_secs(15))
        .await
        .expect("the waiting connection was never served");
    let text = String::from_utf8_lossy(&read);
    assert!(text.contains("200 OK"), "{text}");
    app.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_reads_never_open_more_connections_than_the_pool_holds() {
    let app = TestApp::spawn().await;
    let reads = (0..64).map(|_| {
        app.store().read(|conn| {
            std::thread::sleep(Duration::from_millis(20));
            Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)
        })
    });
    let results = futures_util::future::join_all(reads).await;
    assert!(results.iter().all(|r| matches!(r, Ok(1))));
    // A flood of health checks, too, goes through the same pool (and its one-second cache).
    let checks = (0..200).map(|_| app.client.get(format!("{}/healthz", app.base)).send());
    for response in futures_util::future::join_all(checks).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    let opened = app.store().reader_connections_opened();
    assert!(
        opened <= quicket_followup::store::READERS,
        "{opened} reading connections opened"
    );
    app.service.stop().await;
}

/// Whether the server has closed `stream` (what it sent before is ignored), without waiting.
fn closed_by_server(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_slow_connections_from_one_address_leave_healthz_answering_for_others() {
    // The defaults (512 at once, 64 per client), with loopback not trusted as a proxy (a trusted
    // proxy carries many clients and is not capped) and a header timeout long enough that nothing
    // is freed by it while the test runs.
    let app = TestApp::spawn_with(|c| {
        c.server.trusted_proxies = Vec::new();
        c.server.header_timeout = Duration::from_secs(300);
        c.server.idle_timeout = Duration::from_secs(300);
    })
    .await;
    assert_eq!(
        app.service
            .engine
            .settings()
            .config
            .server
            .max_connections_per_client,
        64
    );
    let addr = app.service.addr;
    let mut slow = Vec::new();
    for _ in 0..600 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // Headers that never end.
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await;
        slow.push(stream);
    }
    // Another client (127.0.0.2 is loopback too) is answered at once, not after the slow ones.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let response = tokio::time::timeout(
        Duration::from_secs(60),
        other.get(format!("http://{addr}/healthz")).send(),
    )
    .await
    .expect("/healthz did not answer another client while one address held 600 connections")
    .unwrap();
    assert_eq!(response.status(), 200);
    // The server accepted every slow connection before that one: those over the cap are closed.
    let open = slow.iter().filter(|s| !closed_by_server(s)).count();
    assert_eq!(open, 64, "one address keeps exactly its share open");
    // Its place freed, the same address is served again: once the server has seen that one of
    // its connections closed (until then a new one is still over the cap and closed at once, as
    // a client that retries would find).
    slow.retain(|s| !closed_by_server(s));
    slow.truncate(63);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let text = loop {
        let mut again = TcpStream::connect(addr).await.unwrap();
        let _ = again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let read = read_until_closed(&mut again, Duration::from_secs(60))
            .await
            .expect("no answer");
        let text = String::from_utf8_lossy(&read).to_string();
        if text.contains("200 OK") || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(text.contains("200 OK"), "{text}");
    drop(slow);
    app.service.stop().await;
}
