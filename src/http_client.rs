//! The one HTTPS client for the services this program asks (Quicket's API, Amazon SNS): rustls on
//! ring with the Mozilla roots, as lettre uses, so no system certificate store is needed; HTTP/1.

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

/// A client for requests without a body (GETs).
pub type HttpsClient =
    Client<hyper_rustls::HttpsConnector<HttpConnector>, http_body_util::Empty<bytes::Bytes>>;

/// A client for HTTPS (and plain HTTP, which the tests' local stand-ins speak). `purpose` names
/// what it is for in the error, e.g. "Quicket's API".
/// The body type `B` is the requests' (`Empty` for GETs, `Full` for a POST).
pub fn https_client<B>(
    purpose: &str,
) -> anyhow::Result<Client<hyper_rustls::HttpsConnector<HttpConnector>, B>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .map_err(|e| anyhow::anyhow!("cannot set up TLS for {purpose}: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
}
