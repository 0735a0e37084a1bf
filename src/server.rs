//! Assembling the service: open the store, settle the webhook token, bind, serve, and stop
//! gracefully (stop accepting, answer what is in flight, flush the writer).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warp::Filter;

use crate::config::Config;
use crate::reminders::Engine;
use crate::reminders::pass::Settings;
use crate::reminders::schedule::Schedule;
use crate::store::Store;
use crate::web;
use crate::webhook;

/// Key of the generated webhook token in the `meta` table.
const TOKEN_KEY: &str = "webhook_token";

/// A running service: its HTTP server and its store.
pub struct Service {
    /// The address the server is bound to (useful when `listen` asked for port 0).
    pub addr: SocketAddr,
    /// The full URL to paste into Quicket.
    pub webhook_url: String,
    /// The store, shared with the routes.
    pub store: Store,
    /// The reminder engine (tests drive passes through it).
    pub engine: Arc<Engine>,
    schedule: Option<Schedule>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl Service {
    /// Opens the store, starts serving on `config.server.listen` and runs reminder passes on
    /// `schedule.scan`.
    pub async fn start(config: Config) -> anyhow::Result<Service> {
        Self::start_with(config, true).await
    }

    /// Like [`Service::start`]; without `scheduled`, passes run only when asked (tests).
    pub async fn start_with(mut config: Config, scheduled: bool) -> anyhow::Result<Service> {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (server.listen): is another program using it?",
                    config.server.listen
                )
            })?;
        let addr = listener.local_addr()?;
        // Links and the printed URL use the port actually bound (listen may ask for port 0).
        config.server.listen = addr;
        let config = Arc::new(config);
        let store = Store::open(&config.database.path)?;
        let token = webhook_token(&config, &store).await?;
        let engine = Arc::new(Engine::new(config.clone(), store.clone()).await?);
        crate::metrics::handle();
        let state = web::AppState::new(
            &config,
            store.clone(),
            engine.clone(),
            token.clone(),
            scheduled,
        )?;
        let routes = webhook::route(&state)
            .or(crate::email_webhook::route(&state))
            .unify()
            .or(web::health_routes(&state))
            .unify()
            .or(web::link_routes(&state))
            .unify()
            .or(web::admin_routes(&state))
            .unify()
            .recover(web::recover)
            .unify()
            .map(web::security_headers)
            .with(warp::log::custom(|info| {
                tracing::debug!(
                    method = %info.method(),
                    status = info.status().as_u16(),
                    elapsed_ms = info.elapsed().as_secs_f64() * 1000.0,
                    "http request"
                );
            }))
            .map(warp::Reply::into_response)
            .boxed();
        let (stop, stopped) = oneshot::channel::<()>();
        let limits = crate::connections::Limits {
            header_timeout: config.server.header_timeout,
            body_timeout: config.server.body_timeout,
            idle_timeout: config.server.idle_timeout,
            max_connections: config.server.max_connections,
        };
        let server = tokio::spawn(crate::connections::serve(
            listener,
            routes,
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        let schedule = if scheduled {
            Some(
                Schedule::start(
                    engine.clone(),
                    &config.schedule.scan,
                    config.schedule.timezone,
                )
                .await?,
            )
        } else {
            None
        };
        Ok(Service {
            addr,
            webhook_url: config.webhook_url(&token),
            store,
            engine,
            schedule,
            stop,
            server,
        })
    }

    /// Re-reads the config file and puts its `[schedule]`, `[[reminders]]`, `[events]` and
    /// `[templates]` in force, with freshly read templates. A broken new version is refused and the
    /// running one kept; changes to other sections need a restart and are reported as such.
    pub async fn reload(&mut self, file: Option<&Path>) -> anyhow::Result<()> {
        let result = self.try_reload(file).await;
        self.engine
            .record_reload(result.as_ref().err().map(|e| format!("{e:#}")));
        result
    }

    async fn try_reload(&mut self, file: Option<&Path>) -> anyhow::Result<()> {
        let mut fresh = Config::load(file)?;
        let running = self.engine.settings().config.clone();
        let mut ignored = Vec::new();
        if !same(&fresh.server, &running.server) {
            ignored.push("[server]");
        }
        if !same(&fresh.database, &running.database) {
            ignored.push("[database]");
        }
        if !same(&fresh.email, &running.email) {
            ignored.push("[email]");
        }
        // The API key usually comes from the environment, which a reload cannot re-read.
        if !same(&fresh.quicket, &running.quicket) {
            ignored.push("[quicket]");
        }
        fresh.quicket = running.quicket.clone();
        fresh.server = running.server.clone();
        fresh.database = running.database.clone();
        fresh.email = running.email.clone();
        let settings = Settings::load(Arc::new(fresh))?;
        let schedule_changed = settings.config.schedule.scan != running.schedule.scan
            || settings.config.schedule.timezone != running.schedule.timezone;
        let steps: Vec<String> = settings.config.step_names();
        let (scan, timezone) = (
            settings.config.schedule.scan.clone(),
            settings.config.schedule.timezone,
        );
        self.engine.replace_settings(settings);
        if schedule_changed && let Some(old) = self.schedule.take() {
            old.stop().await;
            self.schedule = Some(Schedule::start(self.engine.clone(), &scan, timezone).await?);
        }
        tracing::info!(steps = %steps.join(", "), "reloaded the reminder steps, schedule, events and templates");
        if !ignored.is_empty() {
            tracing::warn!(
                "changes to {} take effect only after a restart",
                ignored.join(", ")
            );
        }
        Ok(())
    }

    /// Stops accepting connections and answers the requests in flight; stops the schedule and lets
    /// a pass in flight finish its email in hand; then flushes the store.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Some(schedule) = self.schedule {
            schedule.stop().await;
        }
        self.engine.stop().await;
        let _ = self.server.await;
        self.store.close().await;
    }
}

/// The configured webhook token, else the one generated on first start and kept in the database.
async fn webhook_token(config: &Config, store: &Store) -> anyhow::Result<String> {
    if !config.server.webhook_token.is_empty() {
        return Ok(config.server.webhook_token.clone());
    }
    Ok(store
        .meta_or_insert(TOKEN_KEY, crate::links::random_token)
        .await?)
}

/// Runs the service until SIGTERM or SIGINT; SIGHUP reloads `file` (see [`Service::reload`]).
pub async fn run(config: Config, file: Option<PathBuf>) -> anyhow::Result<()> {
    // Signal handlers go in before the server answers anything (so that a reload or stop sent right after start is never lost).
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install the SIGINT handler")?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler")?;
    let mut service = Service::start(config).await?;
    println!("Listening on http://{}", service.addr);
    println!(
        "Paste this URL into Quicket (Settings -> Integrations -> Webhooks): {}",
        service.webhook_url
    );
    tracing::info!(addr = %service.addr, "quicket-followup is running");
    loop {
        tokio::select! {
            _ = terminate.recv() => { tracing::info!("SIGTERM: stopping"); break }
            _ = interrupt.recv() => { tracing::info!("SIGINT: stopping"); break }
            _ = hangup.recv() => {
                if let Err(e) = service.reload(file.as_deref()).await {
                    tracing::error!("SIGHUP: the new settings were refused, the running ones are kept: {e:#}");
                }
            }
        }
    }
    service.stop().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Whether two config sections are equal (compared by their serialized form).
fn same<T: serde::Serialize>(a: &T, b: &T) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}
