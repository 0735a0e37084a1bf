//! The HTTP connection layer under the routes: accepts at most `server.max_connections`
//! connections at once (the rest wait in the kernel's backlog), of which one client address may
//! hold at most `server.max_connections_per_client` (more from it are closed at once, so that one
//! client cannot take every place; a trusted proxy, which carries many clients, is not capped), and
//! serves each with hyper's HTTP/1
//! server and a timer, which warp 0.4's own server lacks. A connection whose request headers have
//! not all arrived within `server.header_timeout` is closed (hyper starts that clock whenever the
//! connection waits for a request, so it also closes an idle keep-alive connection); a request body
//! must arrive within `server.body_timeout`; a connection on which nothing at all moves for
//! `server.idle_timeout` (a client that stops reading our answer) is closed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower_service::Service as _;
use warp::Filter;

/// The limits of the connection layer (`[server]` keys).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Request headers must all arrive within this.
    pub header_timeout: Duration,
    /// A request body must all arrive within this, from when its headers did.
    pub body_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections served at once from one client address (an IPv6 client: its /64).
    pub max_connections_per_client: usize,
    /// Addresses not capped per client: the reverse proxies, each connection a different client.
    pub uncapped: Vec<crate::proxies::ProxyNet>,
}

/// How many connections each client address holds now.
#[derive(Clone, Default)]
struct PerClient(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's place in [`PerClient`], given back when dropped.
struct ClientPlace {
    key: IpAddr,
    counts: PerClient,
}

impl PerClient {
    /// A place for one more connection from `ip`, unless it already holds `cap`.
    fn enter(&self, ip: IpAddr, cap: usize) -> Option<ClientPlace> {
        let key = client_key(ip);
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let held = counts.entry(key).or_insert(0);
        if *held >= cap {
            return None;
        }
        *held += 1;
        Some(ClientPlace {
            key,
            counts: self.clone(),
        })
    }
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = counts.get_mut(&self.key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// What counts as one client: an IPv4 address; an IPv6 /64, which one subscriber usually holds
/// whole (so that walking through its addresses gains nothing).
fn client_key(ip: IpAddr) -> IpAddr {
    match crate::proxies::canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// The connecting address, put into every request's extensions (warp's `addr::remote()` is filled
/// only by `warp::serve`, which this layer replaces): read it with [`remote`].
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The connecting address of the request (what `warp::addr::remote()` gives under `warp::serve`).
pub fn remote() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Copy {
    warp::ext::optional::<ClientAddr>().map(|a: Option<ClientAddr>| a.map(|a| a.0))
}

/// The error a request body gives once `body_timeout` has passed; routes answer it with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// Serves `filter` on `listener` until `shutdown` completes, then answers what is in flight.
pub async fn serve(
    listener: TcpListener,
    filter: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = PerClient::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let service = warp::service(filter);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Take a place before accepting: over the cap, connections wait in the backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let place = if limits.uncapped.iter().any(|net| net.contains(addr.ip())) {
            None
        } else {
            match per_client.enter(addr.ip(), limits.max_connections_per_client.max(1)) {
                Some(place) => Some(place),
                None => {
                    // Closed at once: its place in the global cap goes back to everyone else.
                    tracing::debug!(%addr, "closing a connection: this client already holds {} (server.max_connections_per_client)", limits.max_connections_per_client);
                    metrics::counter!(crate::metrics::CONNECTIONS_OVER_CAP).increment(1);
                    drop(stream);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let io = TokioIo::new(Watched {
            stream,
            started,
            activity: activity.clone(),
        });
        let service = service.clone();
        let body_timeout = limits.body_timeout;
        let handler = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ClientAddr(addr));
            let request = request.map(|body| TimedBody::new(body, body_timeout));
            let mut service = service.clone();
            async move { service.call(request).await }
        });
        let connection = graceful.watch(builder.serve_connection(io, handler));
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            loop {
                let last = Duration::from_millis(activity.load(Ordering::Relaxed));
                let idle = started.elapsed().saturating_sub(last);
                if idle >= idle_timeout {
                    tracing::debug!(%addr, "closing a connection on which nothing moved for {idle_timeout:?}");
                    break;
                }
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(%addr, "connection ended: {e}");
                        }
                        break;
                    }
                    () = tokio::time::sleep(idle_timeout - idle) => {}
                }
            }
            drop(place);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A TCP stream that notes when something was last read or written (ms after `started`).
struct Watched {
    stream: TcpStream,
    started: Instant,
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that fails with [`BodyTimeout`] once `timeout` has passed since the request's
/// headers arrived and it has still not all come.
struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    created: tokio::time::Instant,
}

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        TimedBody {
            inner,
            timeout,
            // Made on the first read that has to wait: most bodies are read without waiting.
            deadline: None,
            created: tokio::time::Instant::now(),
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let (created, timeout) = (this.created, this.timeout);
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(created + timeout)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(timeout))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_its_cap_and_a_closed_connection_gives_its_place_back() {
        let counts = PerClient::default();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let places: Vec<_> = (0..3).filter_map(|_| counts.enter(ip, 3)).collect();
        assert_eq!(places.len(), 3);
        assert!(counts.enter(ip, 3).is_none(), "a fourth is refused");
        assert!(
            counts.enter("203.0.113.8".parse().unwrap(), 3).is_some(),
            "others are not"
        );
        drop(places);
        assert!(counts.enter(ip, 3).is_some());
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64_and_a_mapped_ipv4_address_is_the_ipv4_one() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:198.51.100.1".parse().unwrap();
        assert_eq!(
            client_key(mapped),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
    }
}
