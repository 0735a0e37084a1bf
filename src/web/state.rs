//! The one state every route shares: built once by `server` at start, handed to each route by
//! [`with_state`].

use std::convert::Infallible;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use warp::Filter;

use super::credentials::AdminCredentials;
use super::health::HealthCache;
use super::throttle::LoginThrottle;
use crate::config::{Config, EmailConfig};
use crate::email_events::signature;
use crate::email_events::sns::Sns;
use crate::reminders::Engine;
use crate::store::Store;

/// What every route needs; cheap to clone (the parts are shared).
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The engine: the settings in force, links, the transport, the event directory.
    pub engine: Arc<Engine>,
    /// The secret path part of the webhook URLs (Quicket's hook and the email provider's).
    pub webhook_token: String,
    /// The zone an `event_date` with an offset is turned into (`schedule.timezone` at start).
    pub hook_timezone: chrono_tz::Tz,
    /// Whether passes run on a schedule here (only then can one be overdue).
    pub scheduled: bool,
    /// When this process started serving.
    pub started_at: DateTime<Utc>,
    /// The admin password in force (none: /admin says how to finish setup).
    pub admin: Arc<AdminCredentials>,
    /// Failed `/admin` logins per client.
    pub throttle: Arc<LoginThrottle>,
    /// `/healthz`'s database reads of the last second.
    pub health: HealthCache,
    /// What the email providers' webhooks are checked with.
    pub providers: Arc<EmailProviders>,
    /// The editable files (the email editor, the history).
    pub workshop: Arc<crate::workshop::Workshop>,
}

impl AppState {
    /// The state for a service serving `config`, with the admin password's hash set through the
    /// setup link, if any (a SendGrid key that cannot be read is an error naming the key).
    pub fn new(
        config: &Config,
        admin_hash: Option<String>,
        store: Store,
        engine: Arc<Engine>,
        webhook_token: String,
        scheduled: bool,
        workshop: Arc<crate::workshop::Workshop>,
    ) -> anyhow::Result<AppState> {
        Ok(AppState {
            store,
            engine,
            webhook_token,
            hook_timezone: config.schedule.timezone,
            scheduled,
            started_at: Utc::now(),
            admin: Arc::new(AdminCredentials::new(
                &config.server.admin_password,
                admin_hash,
            )),
            throttle: Arc::default(),
            health: HealthCache::default(),
            providers: Arc::new(EmailProviders::new(&config.email)?),
            workshop,
        })
    }
}

/// The email providers' signing keys, and the SNS client for SES.
pub struct EmailProviders {
    /// `email.mailgun_signing_key`.
    pub mailgun_key: String,
    /// `email.sendgrid_public_key`, decoded (DER), when set.
    pub sendgrid_key: Option<Vec<u8>>,
    /// `email.postmark_webhook_user` and `_password`, when set.
    pub postmark_auth: Option<signature::BasicAuth>,
    /// Fetches SNS certificates and confirms subscriptions.
    pub sns: Sns,
}

impl EmailProviders {
    /// The keys of `config`; a SendGrid key that cannot be read is an error naming the key.
    pub fn new(config: &EmailConfig) -> anyhow::Result<EmailProviders> {
        let sendgrid = config.sendgrid_public_key.trim();
        let sendgrid_key = if sendgrid.is_empty() {
            None
        } else {
            Some(signature::sendgrid_key(sendgrid).map_err(|e| anyhow::anyhow!("{e}"))?)
        };
        Ok(EmailProviders {
            mailgun_key: config.mailgun_signing_key.clone(),
            sendgrid_key,
            postmark_auth: (!config.postmark_webhook_password.is_empty()).then(|| {
                signature::BasicAuth {
                    user: config.postmark_webhook_user.clone(),
                    password: config.postmark_webhook_password.clone(),
                }
            }),
            sns: Sns::new(
                config.sns_trust_localhost,
                std::time::Duration::from_secs(10),
            )?,
        })
    }
}

/// The state, for a route to take: `.and(with_state(&state))`.
pub fn with_state(
    state: &AppState,
) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone + use<> {
    let state = state.clone();
    warp::any().map(move || state.clone())
}
