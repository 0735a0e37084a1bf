//! The command line: clap types, logging set-up, and dispatch to the library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};
use crate::export::{ExportFormat, ExportKind};
use crate::store::Store;
use crate::store::privacy::SuppressionSource;

/// Wins back abandoned Quicket checkouts: keeps Quicket's webhooks and emails dormant buyers.
#[derive(Debug, Parser)]
#[command(name = "quicket-followup", version, about)]
pub struct Cli {
    /// The TOML config file (default: $QUICKET_FOLLOWUP_CONFIG, else ./quicket-followup.toml when
    /// it exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands (the README's "Commands").
#[derive(Debug, Subcommand)]
pub enum Command {
    /// HTTP server and reminder scheduler (the default).
    Serve,
    /// Validate the config and every template (rendering each with sample data), test the email
    /// transport, and print the reminder plan; exit 1 on any error.
    Check {
        /// Also send every step to this address through the configured transport.
        #[arg(long, value_name = "EMAIL")]
        send_test: Option<String>,
    },
    /// Render reminder STEP for a stored order (or sample data): the subject, then the body.
    Preview {
        /// The step's name, as in [[reminders]].
        step: String,
        /// A stored order's reference (default: built-in sample data).
        #[arg(long, value_name = "REF")]
        reference: Option<String>,
        /// Print the plain-text part instead of the HTML.
        #[arg(long)]
        text: bool,
    },
    /// One reminder pass at TIME (default: now), printing one line per buyer and event considered.
    RunOnce {
        /// The time to decide for, RFC 3339 (e.g. 2026-12-01T10:00:00+02:00).
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
        /// Decide and print, but send nothing and record nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Never email this address again (compared trimmed and case-insensitively).
    Unsubscribe {
        /// The address.
        email: String,
    },
    /// Take an address off the suppression list.
    Resubscribe {
        /// The address.
        email: String,
    },
    /// Remove everything about one address except its suppression entry (a buyer's request to
    /// be forgotten).
    Forget {
        /// The address.
        email: String,
    },
    /// The overview's figures: hooks and reminders over 24 h, 7 and 30 days, dormant buyers, and
    /// what the reminders recovered.
    Stats {
        /// text (for people) or json (for scripts).
        #[arg(long, value_enum, default_value_t = StatsFormat::Text)]
        format: StatsFormat,
    },
    /// Reprocess stored deliveries that were not recorded (after an upgrade); idempotent.
    Replay,
    /// Write a new DKIM private key to FILE (mode 0600; never over an existing file) and print
    /// the DNS TXT record to publish.
    DkimKeygen {
        /// Where to write the key (PEM).
        file: PathBuf,
        /// An Ed25519 key instead of RSA 2048 (smaller; not every receiver checks Ed25519 yet).
        #[arg(long)]
        ed25519: bool,
    },
    /// Lift a pause of the circuit breaker (complaints or bounces too high): due reminders go
    /// out from the next pass; the rates are measured afresh from now.
    ResumeSending,
    /// Print a fresh one-time link to finish setting up in the browser (or to choose a new admin
    /// password): valid for a day; any earlier link stops working.
    SetupLink,
    /// A consistent copy of the live database (safe while serve runs).
    Backup {
        /// Where to write the copy (replaced if it exists).
        file: PathBuf,
    },
    /// Write a commented quicket-followup.toml (every key with its default) and the shipped
    /// email templates (templates/emails/) into DIR, to edit; never overwrites a file.
    Init {
        /// Where to write them (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// The organiser's report for the 7 days up to TIME (default: now): reminders sent, purchases
    /// after them, what they added against the control group, and the week's alerts. Names no buyer.
    Report {
        /// Also email it (text and HTML, with its chart) to notify.to.
        #[arg(long)]
        send: bool,
        /// The end of the 7 days, RFC 3339 (e.g. 2026-12-07T08:00:00+02:00).
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
    },
    /// Everything stored, one record a line.
    Export {
        /// orders or deliveries.
        what: ExportKind,
        /// json (JSON Lines) or csv.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
    },
}

/// How `stats` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// For people.
    Text,
    /// For scripts.
    Json,
}

/// Parses the command line, runs the command, and turns an error into one line on stderr and
/// exit code 1.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are not errors.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // Scripts rely on exit 1 with a one-line cause (clap's own would be 2 and several lines).
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad command line");
            let first = first.trim_start_matches("error: ");
            return fail(&anyhow::anyhow!("{first} (see quicket-followup --help)"));
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    let line = format!("{e:#}").replace('\n', " ");
    let _ = writeln!(std::io::stderr(), "error: {line}");
    ExitCode::FAILURE
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // init needs no configuration (it writes one), nor a database.
    if let Some(Command::Init { dir }) = &cli.command {
        let dir = dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let written = crate::init::init(&dir)?;
        let mut out = std::io::stdout().lock();
        for path in &written {
            writeln!(out, "wrote {}", path.display())?;
        }
        writeln!(
            out,
            "\nEdit the emails in {}, then run `quicket-followup check` in {} (it reads {} and the templates there).",
            dir.join(crate::init::TEMPLATES_DIR).display(),
            dir.display(),
            crate::config::DEFAULT_CONFIG_FILE
        )?;
        return Ok(());
    }
    let file = Config::locate(cli.config.as_deref());
    let config = Config::load(file.as_deref())?;
    init_logging(config.server.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => crate::server::run(config, file).await,
        Command::Init { .. } => Ok(()),
        Command::Check { send_test } => {
            let report = crate::check::check(config, file.as_deref(), send_test.as_deref()).await?;
            report.print(&mut std::io::stdout().lock())?;
            report.verdict()
        }
        Command::Preview {
            step,
            reference,
            text,
        } => {
            let email = crate::check::preview(config, &step, reference.as_deref(), text).await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{email}")?;
            Ok(())
        }
        Command::RunOnce { now, dry_run } => run_once(config, parse_now(now)?, dry_run).await,
        Command::Report { send, now } => report(config, parse_now(now)?, send).await,
        Command::Unsubscribe { email } => {
            let added = with_store(&config, |store| async move {
                store
                    .add_suppression(
                        &email,
                        SuppressionSource::Cli,
                        None,
                        None,
                        chrono::Utc::now(),
                    )
                    .await
                    .map_err(anyhow::Error::from)
            })
            .await?;
            println!(
                "{}",
                if added {
                    "unsubscribed"
                } else {
                    "already unsubscribed"
                }
            );
            Ok(())
        }
        Command::Resubscribe { email } => {
            let removed = with_store(&config, |store| async move {
                store
                    .remove_suppression(
                        &email,
                        crate::store::privacy::Removal {
                            by: crate::store::privacy::RemovedBy::Cli,
                            client: String::new(),
                            reason: "resubscribe on the command line".into(),
                        },
                        chrono::Utc::now(),
                    )
                    .await
                    .map(|removed| removed.is_some())
                    .map_err(anyhow::Error::from)
            })
            .await?;
            println!(
                "{}",
                if removed {
                    "subscribed again"
                } else {
                    "was not unsubscribed"
                }
            );
            Ok(())
        }
        Command::DkimKeygen { file, ed25519 } => {
            let key = crate::email::dkim::keygen(&file, ed25519)?;
            let domain = config
                .email
                .from
                .parse::<lettre::message::Mailbox>()
                .map(|m| m.email.domain().to_string())
                .unwrap_or_else(|_| "YOUR-DOMAIN".into());
            let selector = match config.email.dkim_selector.trim() {
                "" => "SELECTOR",
                s => s,
            };
            println!(
                "wrote a {}-bit {} key to {}",
                key.bits,
                key.algorithm,
                file.display()
            );
            println!("publish this DNS record, then set [email] dkim_selector and dkim_key:");
            println!("  name {selector}._domainkey.{domain}");
            println!("  TXT  \"{}\"", key.txt_record());
            Ok(())
        }
        Command::ResumeSending => {
            let lifted = with_store(&config, |store| async move {
                store
                    .resume_sending(chrono::Utc::now())
                    .await
                    .map_err(anyhow::Error::from)
            })
            .await?;
            match lifted {
                Some(pause) => println!(
                    "sending resumed (it was paused since {}: {})",
                    pause.since, pause.reason
                ),
                None => println!("sending was not paused; nothing changed"),
            }
            Ok(())
        }
        Command::Forget { email } => {
            let key = crate::domain::email_key(&email);
            let removed = with_store(&config, |store| async move {
                store.forget(&email).await.map_err(anyhow::Error::from)
            })
            .await?;
            // The outbox transport kept a copy of every email sent to them.
            let emails = crate::email::forget_in_outbox(&config.email.outbox_dir, &key)?;
            println!(
                "forgotten: {} orders, {} buyer-events, {} deliveries, {emails} outbox emails (the suppression entry, if any, is kept)",
                removed.orders, removed.buyer_events, removed.deliveries
            );
            Ok(())
        }
        Command::Stats { format } => {
            let rules = config.stats_rules();
            let stats = with_store(&config, |store| async move {
                store
                    .stats(chrono::Utc::now(), rules)
                    .await
                    .map_err(anyhow::Error::from)
            })
            .await?;
            let mut out = std::io::stdout().lock();
            match format {
                StatsFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?,
                StatsFormat::Text => write!(out, "{}", crate::present::stats_in_words(&stats))?,
            }
            Ok(())
        }
        Command::Replay => {
            let timezone = config.schedule.timezone;
            let report = with_store(&config, |store| async move {
                store.replay(timezone).await.map_err(anyhow::Error::from)
            })
            .await?;
            println!(
                "replayed {} deliveries: {} recorded, {} repeats, {} still not usable",
                report.examined, report.recorded, report.duplicate, report.unchanged
            );
            Ok(())
        }
        Command::SetupLink => {
            if !config.server.admin_password.is_empty() {
                anyhow::bail!(
                    "the admin password is set in the configuration (server.admin_password, or \
                     QUICKET_FOLLOWUP_ADMIN_PASSWORD): sign in with it, or remove it there to \
                     choose one in the browser"
                );
            }
            let public_url = config.public_url();
            let link = with_store(&config, |store| async move {
                crate::web::new_setup_link(&store, &public_url, chrono::Utc::now()).await
            })
            .await?;
            println!("Finish setting up: {link}");
            Ok(())
        }
        Command::Backup { file } => {
            let report = with_store(&config, |store| async move {
                store.backup(&file).await.map_err(anyhow::Error::from)
            })
            .await?;
            println!(
                "backup written to {} ({} pages, integrity ok)",
                report.path.display(),
                report.pages
            );
            Ok(())
        }
        Command::Export { what, format } => {
            let store = Store::open(&config.database.path)?;
            let out = Box::new(std::io::BufWriter::new(std::io::stdout()));
            let result = crate::export::export(&store, what, format, out).await;
            store.close().await;
            match result {
                // `export ... | head` closes the pipe early; that is not an error.
                Err(e) if is_broken_pipe(&e) => Ok(()),
                other => other.context("export failed"),
            }
        }
    }
}

/// `--now TIME` read as RFC 3339, else the clock.
fn parse_now(now: Option<String>) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    Ok(match now {
        Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| {
                anyhow::anyhow!(
                    "--now {text:?} is not an RFC 3339 time like 2026-12-01T10:00:00+02:00 ({e})"
                )
            })?,
        None => chrono::Utc::now(),
    })
}

/// `report`: prints the 7 days up to `now`; with `send`, emails them to `notify.to`.
async fn report(
    config: Config,
    now: chrono::DateTime<chrono::Utc>,
    send: bool,
) -> anyhow::Result<()> {
    if send && config.notify.to.is_empty() {
        anyhow::bail!(
            "--send needs the organiser's address: set [notify] to = [\"you@your-domain\"] in the configuration"
        );
    }
    let mailer = crate::email::Mailer::from_config(&config.email)?;
    let path = config.database.path.clone();
    let store = Store::open(&path)?;
    let result = async {
        let report = crate::notify::report::Report::gather(&store, &config, now).await?;
        print!("{}", report.text());
        if send {
            let delivery = crate::notify::Notifier::new(mailer)
                .send(&config.notify, &config.email, &report.notice()?)
                .await;
            anyhow::ensure!(
                delivery.emailed,
                "the report was not sent: {}",
                delivery.errors.join("; ")
            );
            println!("\nsent to {}", config.notify.to.join(", "));
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

/// Opens the store, runs `work`, and closes the store whatever happened.
async fn with_store<T, F, Fut>(config: &Config, work: F) -> anyhow::Result<T>
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let store = Store::open(&config.database.path)?;
    let result = work(store.clone()).await;
    store.close().await;
    result
}

async fn run_once(
    config: Config,
    now: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let config = std::sync::Arc::new(config);
    let store = Store::open(&config.database.path)?;
    let result = async {
        let engine = crate::reminders::Engine::new(config.clone(), store.clone()).await?;
        // One line per buyer as it is decided, through one buffer (100,000 lines, one write each,
        // would otherwise cost more than deciding them).
        let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::BufWriter::new(
            std::io::stdout(),
        )));
        let sink_out = out.clone();
        let sink = Box::new(move |line: &crate::reminders::PassLine| {
            if let Ok(mut out) = sink_out.lock() {
                let _ = writeln!(out, "{line}");
            }
        });
        let engine = std::sync::Arc::new(engine);
        let report = engine.run_pass_into(now, dry_run, Some(sink)).await;
        // What the pass changed (a pause, a failure) is told the organiser now, not at serve's
        // next check; the database keeps serve and this from telling it twice.
        if !dry_run && !matches!(report, Err(crate::reminders::PassError::Busy)) {
            let watcher =
                crate::notify::alerts::Watcher::new(engine.clone(), store.clone(), None);
            if let Err(e) = watcher.check(now).await {
                tracing::error!("the alert checks failed: {e:#}");
            }
        }
        let report = report?;
        let mut out = out
            .lock()
            .map_err(|_| anyhow::anyhow!("stdout is unusable"))?;
        let c = &report.counts;
        if let Some(reason) = &report.paused {
            writeln!(
                out,
                "sending is paused: {reason}; nothing was sent (resume with `quicket-followup resume-sending`)"
            )?;
        }
        writeln!(
            out,
            "{}pass at {}: considered {}, sent {}, deferred {}, skipped {}, failed {}{}",
            if dry_run { "dry run: " } else { "" },
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            c.considered,
            c.sent,
            c.deferred,
            c.skipped,
            c.failed,
            if c.interrupted > 0 {
                format!(
                    ", interrupted {} (may or may not have arrived; not sent again)",
                    c.interrupted
                )
            } else {
                String::new()
            }
        )?;
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.to_string().contains("Broken pipe")
    })
}

/// Logs to stderr: readable lines, or JSON; `RUST_LOG` overrides the default level.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        // A client that hangs up mid-request is logged by warp at ERROR; it is not ours to fix.
        .unwrap_or_else(|_| {
            EnvFilter::new("info,tokio_cron_scheduler=warn,warp=warn,warp::server=off,hyper=warn")
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
