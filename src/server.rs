//! Assembling the service: open the store, settle the webhook token, bind, serve, and stop
//! gracefully (stop accepting, answer what is in flight, flush the writer).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::config::Config;
use crate::reminders::Engine;
use crate::reminders::pass::Settings;
use crate::reminders::schedule::Schedule;
use crate::store::Store;
use crate::web;
use crate::webhook;
use crate::workshop::{Reloader, Workshop};

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
    /// The editable files: read, saved safely, kept in the history.
    pub workshop: Arc<Workshop>,
    /// The admin password in force (shared with the routes; setup changes it).
    pub admin: Arc<web::AdminCredentials>,
    /// The alert checks and the weekly report (tests call its `check` with a time of their own).
    pub watcher: Arc<crate::notify::alerts::Watcher>,
    watching: Option<(tokio::sync::watch::Sender<bool>, JoinHandle<()>)>,
    /// The main config file a reload re-reads (none: the configuration in force is kept).
    config_file: Option<PathBuf>,
    schedule: Arc<tokio::sync::Mutex<Option<Schedule>>>,
    /// Answers the workshop's reload requests (a save is applied as a reload).
    reloads: JoinHandle<()>,
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
    pub async fn start_with(config: Config, scheduled: bool) -> anyhow::Result<Service> {
        Self::start_from(config, None, scheduled).await
    }

    /// Like [`Service::start_with`], for a configuration read from `file`: a reload (SIGHUP, or
    /// a save from the browser) reads that file again.
    pub async fn start_from(
        mut config: Config,
        file: Option<PathBuf>,
        scheduled: bool,
    ) -> anyhow::Result<Service> {
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
        // A read-only file would have every hook refused: say so now rather than at the first one.
        if let Err(e) = store.probe_write().await {
            store.close().await;
            anyhow::bail!(
                "the database {} cannot be written ({e}): make the file, its directory and any \
                 -wal and -shm files beside it writable by the user running quicket-followup",
                config.database.path.display()
            );
        }
        let token = webhook_token(&config, &store).await?;
        let engine = Arc::new(Engine::new(config.clone(), store.clone()).await?);
        // The files as they are at start: what changed by hand while the service was stopped.
        if let Err(e) = crate::workshop::notice_hand_edits(&store, &config, file.as_deref()).await {
            tracing::warn!("the editable files could not be compared with the history: {e:#}");
        }
        let (reloader, mut reload_requests) = Reloader::channel();
        let workshop = Arc::new(Workshop::new(
            store.clone(),
            engine.clone(),
            reloader,
            file.clone(),
        ));
        crate::metrics::handle();
        let admin_hash = store.admin_password_hash().await?;
        let state = web::AppState::new(
            &config,
            admin_hash,
            store.clone(),
            engine.clone(),
            token.clone(),
            scheduled,
            workshop.clone(),
        )?;
        let admin = state.admin.clone();
        let routes = routes(&state);
        let (stop, stopped) = oneshot::channel::<()>();
        let limits = crate::connections::Limits {
            header_timeout: config.server.header_timeout,
            body_timeout: config.server.body_timeout,
            idle_timeout: config.server.idle_timeout,
            max_connections: config.server.max_connections,
            max_connections_per_client: config.server.max_connections_per_client,
            uncapped: config.server.trusted_proxies.clone(),
        };
        let server = tokio::spawn(crate::connections::serve(
            listener,
            routes,
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        let schedule: Option<Schedule> = if scheduled {
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
        let schedule = Arc::new(tokio::sync::Mutex::new(schedule));
        let watcher = Arc::new(crate::notify::alerts::Watcher::new(
            engine.clone(),
            store.clone(),
            Some(crate::notify::alerts::Serving {
                started_at: chrono::Utc::now(),
                scheduled,
                config_file: file.clone(),
            }),
        ));
        // Alerts and the weekly report run beside the passes (tests drive them by hand).
        let watching = scheduled.then(|| {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            (stop, tokio::spawn(watcher.clone().run(stopped)))
        });
        let reloads = {
            let reloading = Reloading {
                store: store.clone(),
                engine: engine.clone(),
                schedule: schedule.clone(),
            };
            let file = file.clone();
            tokio::spawn(async move {
                while let Some(request) = reload_requests.recv().await {
                    let result = reloading.reload(file.as_deref()).await;
                    if let Err(e) = &result {
                        tracing::error!(
                            "a save from the browser: the new settings were refused, the running ones are kept: {e:#}"
                        );
                    }
                    request.answer(&result);
                }
            })
        };
        Ok(Service {
            addr,
            webhook_url: config.webhook_url(&token),
            store,
            engine,
            workshop,
            admin,
            watcher,
            watching,
            config_file: file,
            schedule,
            reloads,
            stop,
            server,
        })
    }

    /// Re-reads the config file and puts its `[schedule]`, `[[reminders]]`, `[events]` and
    /// `[templates]` in force, with freshly read templates (no file: the configuration in force,
    /// with its templates read again). A broken new version is refused and the running one kept;
    /// changes to other sections need a restart and are reported as such. Then the editable files
    /// changed by hand are recorded in the history.
    pub async fn reload(&mut self, file: Option<&Path>) -> anyhow::Result<()> {
        Reloading {
            store: self.store.clone(),
            engine: self.engine.clone(),
            schedule: self.schedule.clone(),
        }
        .reload(file)
        .await
    }

    /// Stops accepting connections and answers the requests in flight; stops the schedule and lets
    /// a pass in flight finish its email in hand; then flushes the store.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Some((stop, mut task)) = self.watching {
            let _ = stop.send(true);
            // A message to the organiser in flight gets a moment to finish, not the SMTP timeout.
            if tokio::time::timeout(std::time::Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        let schedule = self.schedule.lock().await.take();
        if let Some(schedule) = schedule {
            schedule.stop().await;
        }
        self.engine.stop().await;
        let _ = self.server.await;
        self.reloads.abort();
        self.store.close().await;
    }

    /// The main config file a reload re-reads.
    pub fn config_file(&self) -> Option<&Path> {
        self.config_file.as_deref()
    }
}

/// What a reload changes: the engine's settings and the schedule (one reload at a time: the
/// schedule's lock is held throughout).
struct Reloading {
    store: Store,
    engine: Arc<Engine>,
    schedule: Arc<tokio::sync::Mutex<Option<Schedule>>>,
}

impl Reloading {
    async fn reload(&self, file: Option<&Path>) -> anyhow::Result<()> {
        let mut schedule = self.schedule.lock().await;
        let result = self.try_reload(file, &mut schedule).await;
        self.engine
            .record_reload(result.as_ref().err().map(|e| format!("{e:#}")));
        let config = self.engine.settings().config.clone();
        if let Err(e) = crate::workshop::notice_hand_edits(&self.store, &config, file).await {
            tracing::warn!("the editable files could not be compared with the history: {e:#}");
        }
        result
    }

    async fn try_reload(
        &self,
        file: Option<&Path>,
        schedule: &mut Option<Schedule>,
    ) -> anyhow::Result<()> {
        let running = self.engine.settings().config.clone();
        let mut fresh = crate::workshop::candidate_config(&running, file)?;
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
        // A buyer-event deferred, or finished, under the old steps may be due under the new ones.
        let rules_changed = !same(&settings.config.reminders, &running.reminders)
            || !same(&settings.config.schedule, &running.schedule)
            || !same(&settings.config.events, &running.events);
        let give_up = chrono::TimeDelta::from_std(settings.config.schedule.give_up_after)
            .unwrap_or(chrono::TimeDelta::MAX);
        let steps: Vec<String> = settings.config.step_names();
        let (scan, timezone) = (
            settings.config.schedule.scan.clone(),
            settings.config.schedule.timezone,
        );
        self.engine.replace_settings(settings);
        if rules_changed {
            let now = chrono::Utc::now();
            let since = now.checked_sub_signed(give_up).unwrap_or(now);
            let n = self.store.look_again_at_open(now, since).await?;
            tracing::info!(
                buyer_events = n,
                "the schedule changed: the next pass looks at every open checkout again"
            );
        }
        if schedule_changed && let Some(old) = schedule.take() {
            old.stop().await;
            *schedule = Some(Schedule::start(self.engine.clone(), &scan, timezone).await?);
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
}

/// Every route: the hooks, `/healthz` and `/metrics`, the links in emails, `/admin`; then the one
/// error mapping, the security headers and the request log.
fn routes(state: &web::AppState) -> BoxedFilter<(Response,)> {
    webhook::route(state)
        .or(web::door_routes(state))
        .unify()
        .or(web::setup_routes(state))
        .unify()
        .or(crate::email_webhook::route(state))
        .unify()
        .or(web::health_routes(state))
        .unify()
        .or(web::link_routes(state))
        .unify()
        .or(web::admin_routes(state))
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
        .boxed()
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
    let mut service = Service::start_from(config, file.clone(), true).await?;
    println!("Listening on http://{}", service.addr);
    // A new one-time link at each start until setup is finished (printing it ends the last one).
    if !service.admin.in_force() {
        let public_url = service.engine.settings().config.public_url();
        let link = web::new_setup_link(&service.store, &public_url, chrono::Utc::now()).await?;
        println!("Finish setting up: {link}");
    }
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
