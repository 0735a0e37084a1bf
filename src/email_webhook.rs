//! `POST /webhooks/email-events/{provider}/{token}`: bounces and complaints from the email
//! provider. The token is Quicket's webhook token; each provider's signature (or Postmark's
//! basic-auth credentials, when configured) is checked where it has one; a request that passes is
//! kept raw and answered 200 once stored. A hard bounce or a complaint puts the address on the
//! suppression list only when it names a reminder sent to that address (its Message-ID): anyone
//! holding the URL can post the others, so they are kept and listed, and change nothing.

use bytes::Buf;
use chrono::Utc;
use futures_util::Stream;
use serde_json::json;
use subtle::ConstantTimeEq;
use warp::Filter;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::{Reply, Response};

use crate::email_events::signature::{self, SignatureError};
use crate::email_events::sns::{Envelope, MessageType, SnsError};
use crate::email_events::{self, EmailEvent, EventKind, Parsed, Provider};
use crate::store::email_events::{DeliveryOutcome, StoredEvent};
use crate::store::privacy::SuppressionSource;
use crate::web::{ApiError, AppState, json_status, read_limited, with_state};

/// Largest body accepted; providers batch, SendGrid up to a few hundred events.
pub const MAX_BODY: usize = 1024 * 1024;

fn count(provider: &'static str, outcome: &'static str) {
    metrics::counter!(crate::metrics::EMAIL_EVENTS, "provider" => provider, "kind" => outcome)
        .increment(1);
}

/// The route.
pub fn route(
    state: &AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + use<> {
    warp::path!("webhooks" / "email-events" / String / String)
        .and(warp::post())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and(with_state(state))
        .then(
            |provider: String,
             token: String,
             length: Option<u64>,
             headers: HeaderMap,
             body,
             state: AppState| {
                async move {
                    receive(&state, &provider, &token, length, &headers, body)
                        .await
                        .unwrap_or_else(Reply::into_response)
                }
            },
        )
}

async fn receive<S, B>(
    state: &AppState,
    provider: &str,
    token: &str,
    length: Option<u64>,
    headers: &HeaderMap,
    body: S,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if !bool::from(token.as_bytes().ct_eq(state.webhook_token.as_bytes())) {
        tracing::warn!("email-events webhook called with a wrong token");
        return Err(ApiError::Unauthorized);
    }
    let provider = Provider::parse(provider).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unknown provider {provider:?}: use postmark, mailgun, sendgrid or ses in the URL"
        ))
    })?;
    if length.is_some_and(|l| l > MAX_BODY as u64) {
        return Err(ApiError::PayloadTooLarge(MAX_BODY));
    }
    let body = read_limited(body, MAX_BODY).await?;
    let now = Utc::now();
    if provider == Provider::Ses {
        return receive_ses(state, body, now).await;
    }
    verify(state, provider, headers, &body)?;
    match email_events::parse(provider, &body) {
        Ok(parsed) => store_events(state, provider, body, parsed, now).await,
        Err(e) => keep_rejected(state, provider, body, e.0).await,
    }
}

/// Checks the signature of a Mailgun or SendGrid request, or Postmark's basic-auth credentials
/// (Postmark signs nothing).
fn verify(
    state: &AppState,
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match provider {
        Provider::Postmark => signature::postmark(
            state.providers.postmark_auth.as_ref(),
            header("authorization"),
        )
        .map_err(|e| refused(provider, e)),
        Provider::Ses => Ok(()),
        Provider::Mailgun => {
            signature::mailgun(&state.providers.mailgun_key, body).map_err(|e| refused(provider, e))
        }
        Provider::Sendgrid => signature::sendgrid(
            state.providers.sendgrid_key.as_deref(),
            header("x-twilio-email-event-webhook-signature"),
            header("x-twilio-email-event-webhook-timestamp"),
            body,
        )
        .map_err(|e| refused(provider, e)),
    }
}

/// A signature that does not verify: 401, or 503 when our own key is missing or unreadable.
fn refused(provider: Provider, e: SignatureError) -> ApiError {
    let name = provider.as_str();
    count(name, "bad_signature");
    tracing::warn!(provider = name, "email-events request refused: {e}");
    match e {
        SignatureError::NoKey(_) => ApiError::NotReady(format!("not stored: {e}")),
        SignatureError::BadKey(_) => ApiError::NotReady(format!(
            "not stored: the key that checks {name}'s signatures cannot be read; the service's log says why"
        )),
        _ => ApiError::BadSignature(format!("{e}: nothing was changed")),
    }
}

/// SES through SNS: the envelope's signature is checked, then a subscription is confirmed or a
/// notification read.
async fn receive_ses(
    state: &AppState,
    body: Vec<u8>,
    now: chrono::DateTime<Utc>,
) -> Result<Response, ApiError> {
    let provider = Provider::Ses;
    let envelope = match Envelope::parse(&body) {
        Ok(envelope) => envelope,
        Err(e) => return keep_rejected(state, provider, body, e.0).await,
    };
    match state.providers.sns.verify(&envelope).await {
        Ok(()) => {}
        Err(SnsError::Signature(e)) => return Err(refused(provider, e)),
        Err(SnsError::Unavailable(e)) => {
            tracing::warn!("the SNS signing certificate could not be fetched: {e}");
            return Err(ApiError::NotReady(
                "not stored, try again later: the SNS signing certificate could not be fetched"
                    .into(),
            ));
        }
    }
    let parsed = match envelope.kind {
        MessageType::Notification => email_events::ses(&envelope.message),
        MessageType::SubscriptionConfirmation => return confirm(state, body, &envelope).await,
        MessageType::UnsubscribeConfirmation => Ok(Parsed {
            events: vec![],
            ignored: 1,
        }),
    };
    match parsed {
        Ok(parsed) => store_events(state, provider, body, parsed, now).await,
        Err(e) => keep_rejected(state, provider, body, e.0).await,
    }
}

/// A body that passed the checks but could not be read: kept with the reason, answered 400.
async fn keep_rejected(
    state: &AppState,
    provider: Provider,
    body: Vec<u8>,
    reason: String,
) -> Result<Response, ApiError> {
    count(provider.as_str(), "rejected");
    let (id, _) = state
        .store
        .record_email_delivery(
            provider,
            body,
            DeliveryOutcome::Rejected,
            Some(reason.clone()),
            vec![],
            Utc::now(),
        )
        .await?;
    tracing::warn!(
        provider = provider.as_str(),
        delivery = id,
        "email-events body kept but refused: {reason}"
    );
    Err(ApiError::BadRequest(reason))
}

async fn store_events(
    state: &AppState,
    provider: Provider,
    body: Vec<u8>,
    parsed: Parsed,
    now: chrono::DateTime<Utc>,
) -> Result<Response, ApiError> {
    let outcome = if parsed.events.is_empty() {
        DeliveryOutcome::Ignored
    } else {
        DeliveryOutcome::Recorded
    };
    let events: Vec<EmailEvent> = parsed.events;
    let (id, stored) = state
        .store
        .record_email_delivery(provider, body, outcome, None, events, now)
        .await?;
    let (suppressed, counts) = suppress(state, provider, &stored, now).await?;
    let unmatched = stored.iter().filter(|e| e.reminder.is_none()).count();
    tracing::info!(
        provider = provider.as_str(),
        delivery = id,
        hard_bounces = counts[0],
        soft_bounces = counts[1],
        complaints = counts[2],
        suppressed,
        unmatched,
        ignored = parsed.ignored,
        "email events recorded"
    );
    if unmatched > 0 {
        tracing::warn!(
            provider = provider.as_str(),
            delivery = id,
            unmatched,
            "email events that name no reminder sent to their address: kept, nothing changed"
        );
    }
    let status = if stored.is_empty() {
        "ignored"
    } else {
        "recorded"
    };
    Ok(json_status(
        &json!({
            "status": status,
            "hard_bounces": counts[0],
            "soft_bounces": counts[1],
            "complaints": counts[2],
            "suppressed": suppressed,
            "unmatched": unmatched,
            "ignored": parsed.ignored,
        }),
        StatusCode::OK,
    ))
}

/// Counts the stored events by kind (hard bounces, soft bounces, complaints) and suppresses the
/// address of each hard bounce and complaint that names a reminder sent to it; returns how many
/// were newly suppressed, and the counts.
async fn suppress(
    state: &AppState,
    provider: Provider,
    stored: &[StoredEvent],
    now: chrono::DateTime<Utc>,
) -> Result<(usize, [usize; 3]), ApiError> {
    let (mut suppressed, mut counts) = (0, [0usize; 3]);
    for event in stored {
        let (slot, source) = match event.kind {
            EventKind::HardBounce => (0, Some(SuppressionSource::Bounce)),
            EventKind::SoftBounce => (1, None),
            EventKind::Complaint => (2, Some(SuppressionSource::Complaint)),
        };
        counts[slot] += 1;
        let Some(reminder) = &event.reminder else {
            if event.new {
                count(provider.as_str(), "unmatched");
            }
            continue;
        };
        if event.new {
            count(provider.as_str(), event.kind.as_str());
        }
        // Through the store's suppression API (idempotent), also for a repeat whose first
        // report was stored but not yet suppressed.
        if let Some(source) = source
            && state
                .store
                .add_suppression(
                    &event.email,
                    source,
                    Some(reminder.event_id.clone()),
                    Some(reminder.step.clone()),
                    now,
                )
                .await?
        {
            suppressed += 1;
        }
    }
    Ok((suppressed, counts))
}

/// An SNS subscription confirmation (signature already checked): kept, then confirmed by GETting
/// its SubscribeURL. A failure is answered 503 so that SNS sends it again.
async fn confirm(
    state: &AppState,
    body: Vec<u8>,
    envelope: &Envelope,
) -> Result<Response, ApiError> {
    let (id, _) = state
        .store
        .record_email_delivery(
            Provider::Ses,
            body,
            DeliveryOutcome::Unconfirmed,
            None,
            vec![],
            Utc::now(),
        )
        .await?;
    match state.providers.sns.confirm(envelope).await {
        Ok(()) => {
            state
                .store
                .set_email_delivery_outcome(id, DeliveryOutcome::Confirmed, None)
                .await?;
            tracing::info!(delivery = id, topic = %envelope.topic_arn, "SNS subscription confirmed");
            Ok(json_status(&json!({"status": "confirmed"}), StatusCode::OK))
        }
        Err(e) => {
            let reason = e.to_string();
            state
                .store
                .set_email_delivery_outcome(id, DeliveryOutcome::Unconfirmed, Some(reason.clone()))
                .await?;
            tracing::warn!(delivery = id, "SNS subscription not confirmed: {reason}");
            Err(ApiError::NotReady(
                "kept, not confirmed yet: the subscription could not be confirmed; send it again"
                    .into(),
            ))
        }
    }
}
