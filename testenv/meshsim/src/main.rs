//! `meshsim` plays the vendor components that Meshdeck's tests cannot obtain — the Gloo Operator, Solo
//! istiod's gateway and peering controllers, a cloud load-balancer controller and the Gloo management plane's
//! config distribution — against real kube-apiservers, following `shared/docs/mesh-spec.md`. Each behaviour
//! cites the spec section it follows.
//!
//! It never imports the console's crates: it reads objects as the vendor controllers would, so a wrong object
//! shape written by the console is caught here instead of being mirrored.
//!
//! Usage: `meshsim --kubeconfig FILE --contexts c1,c2,… [--step-delay-ms 200] [--debug-ports P1,P2,…] [--state DIR]`

#![recursion_limit = "256"]

mod apply;
mod ca;
mod cluster;
mod debug;
mod faults;
mod gateways;
mod lb;
mod mgmt;
mod operator;
mod world;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Command-line options.
#[derive(Debug)]
pub struct Options {
    pub kubeconfig: PathBuf,
    pub contexts: Vec<String>,
    pub step_delay: Duration,
    pub state: Option<PathBuf>,
    /// Per context (same order), the loopback port of istiod's debug endpoint that kwok forwards 15014 to.
    pub debug_ports: Vec<u16>,
}

fn parse_args() -> Result<Options, String> {
    let mut kubeconfig = None;
    let mut contexts = Vec::new();
    let mut step_delay = Duration::from_millis(200);
    let mut state = None;
    let mut debug_ports = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--contexts" => {
                contexts = value("--contexts")?
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "--step-delay-ms" => {
                let v = value("--step-delay-ms")?;
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("--step-delay-ms: not a number: {v}"))?;
                step_delay = Duration::from_millis(ms);
            }
            "--state" => state = Some(PathBuf::from(value("--state")?)),
            "--debug-ports" => {
                debug_ports = value("--debug-ports")?
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|p| {
                        p.trim()
                            .parse::<u16>()
                            .map_err(|_| format!("--debug-ports: not a port: {p}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "-h" | "--help" => {
                return Err("usage: meshsim --kubeconfig FILE --contexts c1,c2,... [--step-delay-ms N] [--debug-ports P1,P2,...] [--state DIR]".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let kubeconfig = kubeconfig.ok_or("--kubeconfig is required")?;
    if contexts.is_empty() {
        return Err("--contexts is required".into());
    }
    if !debug_ports.is_empty() && debug_ports.len() != contexts.len() {
        return Err("--debug-ports needs one port per context".into());
    }
    Ok(Options {
        kubeconfig,
        contexts,
        step_delay,
        state,
        debug_ports,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MESHSIM_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,kube_runtime=warn,kube_client=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    match world::run(opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("meshsim stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
