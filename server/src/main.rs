//! `meshdeck serve`: starts the console server. `meshdeck backup OUT` / `meshdeck restore IN`: the embedded
//! SQLite store. `meshdeck --version`.

use std::future::IntoFuture;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    server::memory::tune_allocator();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MESHDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,kube=warn"));
    // MESHDECK_LOG_FORMAT=json: one JSON object per line (for a log collector).
    if std::env::var("MESHDECK_LOG_FORMAT").is_ok_and(|f| f == "json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {}
        Some("--version" | "version") => {
            say(format!("meshdeck {}", server::VERSION));
            return ExitCode::SUCCESS;
        }
        Some(cmd @ ("backup" | "restore")) => {
            return match store_command(cmd, &args[1..]).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("meshdeck {cmd}: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Some("-h" | "--help" | "help") | None => {
            eprintln!("{}", server::USAGE);
            return if args.is_empty() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        Some(other) => {
            eprintln!("unknown command {other:?}\n{}", server::USAGE);
            return ExitCode::from(2);
        }
    }
    let code = match run(&args[1..]).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    };
    // Stopped: exit now. Returning would drop the runtime, which waits for work on blocking threads (such as
    // the browser files' compression at start) and so could hold a stop up for minutes.
    std::process::exit(code)
}

/// What a command answers, on stdout.
fn say(line: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// `backup OUT` / `restore IN`, with `--database-url` (or `MESHDECK_DATABASE_URL` / `DATABASE_URL`, else the
/// default store).
async fn store_command(cmd: &str, args: &[String]) -> anyhow::Result<()> {
    let mut url = std::env::var("MESHDECK_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "sqlite://meshdeck-data/meshdeck.db".into());
    let mut path = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--database-url" => {
                url = it
                    .next()
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("--database-url needs a value"))?
            }
            p if path.is_none() && !p.starts_with("--") => path = Some(std::path::PathBuf::from(p)),
            other => anyhow::bail!("unknown argument {other:?}\n{}", server::USAGE),
        }
    }
    let path = path.ok_or_else(|| anyhow::anyhow!("name the file\n{}", server::USAGE))?;
    if cmd == "backup" {
        app::ssr::store::Store::backup(&url, &path).await?;
        say(format!(
            "backed up to {} — keep the console's secret key with it (its key file or MESHDECK_SECRET_KEY): \
             the credentials in the store open only with that key",
            path.display()
        ));
    } else {
        let kept = app::ssr::store::Store::restore(&path, &url).await?;
        match kept {
            Some(k) => say(format!(
                "restored {}; the store it replaced is kept as {}",
                path.display(),
                k.display()
            )),
            None => say(format!("restored {}", path.display())),
        }
    }
    Ok(())
}

async fn run(args: &[String]) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let config = server::Config::from_args(args, env)?;
    let console = server::start(&config, env).await?;
    tracing::info!(database = console.state.store.backend(), "store ready");
    server::spawn_background(&console, std::time::Duration::from_secs(600));
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let local = listener.local_addr()?;
    // The one line scripts and people look for.
    tracing::info!("listening on http://{local}");
    let jobs = console.state.jobs.clone();
    let notifier = console.state.notifier.clone();
    let grace = config.shutdown_grace;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // With each connection's address: sign-in throttling keys on the client's address.
    let server = axum::serve(
        listener,
        server::router(console).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    })
    .into_future();
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => return Ok(served?),
        () = stop_signal() => {}
    }
    // Stopping (SIGTERM from Kubernetes, or Ctrl-C): no new connections, /readyz answers 503, live views
    // end (browsers reconnect elsewhere), running jobs finish their step and are handed over (see
    // `Jobs::hand_over`), requests under way complete.
    tracing::info!(
        grace_secs = grace.as_secs(),
        "stopping: running jobs finish their step, then are handed over"
    );
    let _ = stop.send(true);
    let handing = tokio::spawn(async move { jobs.hand_over(grace).await });
    notifier.stopping();
    if tokio::time::timeout(grace + std::time::Duration::from_secs(5), &mut server)
        .await
        .is_err()
    {
        tracing::warn!("requests still open after the grace period: stopping anyway");
    }
    let handed = handing.await?;
    tracing::info!(
        handed_over = handed.released.len(),
        stopped_mid_step = handed.cut.len(),
        "stopped"
    );
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
