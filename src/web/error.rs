//! The one place that maps errors to HTTP statuses. Every route answers JSON errors of the shape
//! `{"status":"error","error":"what is wrong"}`.

use std::convert::Infallible;

use serde_json::json;
use warp::Rejection;
use warp::http::{StatusCode, header};
use warp::reply::{Reply, Response};

use crate::store::StoreError;

/// An error a handler answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The token in the path is wrong.
    #[error("wrong token: check the URL pasted into Quicket")]
    Unauthorized,
    /// A signed request whose signature is missing or wrong (an email provider's webhook).
    #[error("{0}")]
    BadSignature(String),
    /// The body is larger than we accept.
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request is malformed; the text says how.
    #[error("{0}")]
    BadRequest(String),
    /// The body did not all arrive within `server.body_timeout`.
    #[error("the body did not arrive within {0:?}")]
    RequestTimeout(std::time::Duration),
    /// Nothing is there (e.g. a delivery whose body retention removed).
    #[error("{0}")]
    NotFound(String),
    /// The database could not store the request (disk full, locked): try again later.
    #[error("not stored, try again later: {0}")]
    Unavailable(String),
    /// Something the service needs for this request is missing (a provider's key not
    /// configured, a certificate that could not be fetched): 503, and the text, which names what
    /// is missing but never a value, is the answer.
    #[error("{0}")]
    NotReady(String),
    /// Anything else; logged with detail, answered plainly.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(reason) => ApiError::Unavailable(reason),
            StoreError::Closed => ApiError::Unavailable("the service is shutting down".into()),
            StoreError::Failed(e) => ApiError::Internal(format!("{e:#}")),
        }
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(%status, "{self}");
        }
        json_status(
            &json!({"status": "error", "error": self.public_message()}),
            status,
        )
    }
}

impl ApiError {
    /// What the answer's body says: the whole reason for the client's own mistakes, and for the
    /// service's failures only what to do (their detail, which may name files, SQL or settings,
    /// goes to the log).
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Unavailable(_) => {
                "not stored, try again later: the database is unavailable".into()
            }
            ApiError::Internal(_) => "internal error: the service's log says more".into(),
            other => other.to_string(),
        }
    }
}

/// Why an admin request was refused (mapped to a status by [`recover`]).
#[derive(Debug)]
pub enum AdminRefused {
    /// No password configured: /admin does not exist.
    Off,
    /// Missing or wrong credentials.
    Unauthorized,
    /// A form posted from another site (or from somewhere the browser would not say).
    CrossSite,
    /// Too many failed logins from this client: try again after this many seconds.
    Throttled(u64),
    /// A browser without a session opened a page: sent to sign in, then back to this path.
    SignIn(String),
    /// A browser's script (not a page) without a session: 401, without the challenge that would
    /// make the browser ask for a password in its own dialog.
    SignedOut,
}

impl warp::reject::Reject for AdminRefused {}

/// The response for a refused admin request.
pub(crate) fn refused(why: &AdminRefused) -> Response {
    match why {
        AdminRefused::Off => super::admin::off_page(),
        AdminRefused::SignIn(next) => {
            let query = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
            warp::reply::with_header(
                StatusCode::SEE_OTHER,
                header::LOCATION,
                format!("/admin/sign-in?{query}"),
            )
            .into_response()
        }
        AdminRefused::SignedOut => warp::reply::with_status(
            "You are signed out: sign in again.\n",
            StatusCode::UNAUTHORIZED,
        )
        .into_response(),
        AdminRefused::Unauthorized => warp::reply::with_header(
            warp::reply::with_status(
                "Sign in as admin with the admin password.\n",
                StatusCode::UNAUTHORIZED,
            ),
            header::WWW_AUTHENTICATE,
            "Basic realm=\"quicket-followup\", charset=\"UTF-8\"",
        )
        .into_response(),
        AdminRefused::CrossSite => warp::reply::with_status(
            "This form was posted from another site.\n",
            StatusCode::FORBIDDEN,
        )
        .into_response(),
        AdminRefused::Throttled(seconds) => warp::reply::with_header(
            warp::reply::with_status(
                format!("Too many failed sign-ins from here: try again in {seconds} seconds.\n"),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            header::RETRY_AFTER,
            seconds.to_string(),
        )
        .into_response(),
    }
}

/// A JSON body with a status.
pub fn json_status(body: &serde_json::Value, status: StatusCode) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// Turns warp's own rejections (no such route, wrong method ...) into JSON errors.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(why) = rejection.find::<AdminRefused>() {
        return Ok(refused(why));
    }
    let (status, message) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "no such page".to_string())
    } else if let Some(e) = rejection.find::<warp::reject::PayloadTooLarge>() {
        // Before "method not allowed": a GET route at the same path also rejects a big POST.
        (StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed".to_string(),
        )
    } else {
        // warp's own wording of a rejection names internals; the client needs only this.
        tracing::debug!("request refused: {rejection:?}");
        (
            StatusCode::BAD_REQUEST,
            "the request could not be read".to_string(),
        )
    };
    Ok(json_status(
        &json!({"status": "error", "error": message}),
        status,
    ))
}
