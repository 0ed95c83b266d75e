//! Running the `helm` CLI safely: the only program Meshdeck starts.
//!
//! - **A minimal environment.** helm never inherits the console's environment (its secret key, database URL,
//!   admin password, metrics token): only `PATH`, the proxy and CA-bundle variables, and `HOME`/`TMPDIR`/
//!   `HELM_*` folders of its own.
//! - **Private folders.** Everything helm writes lives under `<temp>/meshdeck-<uid>/<pid>-<random>/` (0700,
//!   checked to be ours and not a link): a cache shared by this process's runs, and a folder per run. Folders
//!   of console processes that no longer run (killed with `kill -9`, say) are removed at start
//!   ([`clean_leftovers`]).
//! - **No credentials on disk.** The cluster's kubeconfig is written to an unnamed file (`O_TMPFILE`, on
//!   `/dev/shm` when there is one): it never has a name, and the kernel frees it when the console closes it or
//!   dies. helm reads it through `/proc/<console pid>/fd/<n>`, which only the same user can open. Only where
//!   unnamed files are unsupported does it fall back to a 0600 file in the run's private folder, removed after.
//! - **No orphans.** helm is killed when its run is dropped (a job aborted, its lease lost), so it cannot go
//!   on beside the console that takes the job over.

use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "helm is not installed on the Meshdeck server ({path}): install Helm 3 (for example from your distribution's \
         packages) or set MESHDECK_HELM to its path"
    )]
    Missing { path: String },
    #[error("helm {action} failed: {message}")]
    Failed {
        action: &'static str,
        message: String,
    },
    #[error("helm's private folder {path}: {source}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing helm's files: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Environment variables passed on to helm (proxies and CA bundles an air-gapped or proxied site needs).
const PASSED_ON: [&str; 9] = [
    "PATH",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// `<temp>/meshdeck-<uid>`: created 0700, and refused unless it is a real folder owned by this user.
fn parent() -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let dir = std::env::temp_dir().join(format!("meshdeck-{}", uid()));
    let folder = |source| Error::Folder {
        path: dir.display().to_string(),
        source,
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(folder(e)),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(folder)?;
    if !meta.is_dir() || meta.uid() != uid() {
        return Err(folder(std::io::Error::other(
            "it is not a folder owned by the console's user (a link, or someone else's)",
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(folder)?;
    }
    Ok(dir)
}

fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect()
}

fn private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(path)
        .map_err(|source| Error::Folder {
            path: path.display().to_string(),
            source,
        })
}

/// This process's folder, made once.
fn home() -> Result<PathBuf> {
    static HOME: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let dir = parent().map_err(|e| e.to_string())?.join(format!(
            "{}-{}",
            std::process::id(),
            random_hex(8)
        ));
        for sub in ["cache", "config", "data"] {
            private_dir(&dir.join(sub)).map_err(|e| e.to_string())?;
        }
        Ok(dir)
    })
    .clone()
    .map_err(|e| Error::Folder {
        path: std::env::temp_dir().display().to_string(),
        source: std::io::Error::other(e),
    })
}

/// Where this process keeps a chart uploaded to the console (`<home>/charts/<sha256>.tgz`, private like
/// the rest): helm reads it from there. The path is the same for the life of the process.
pub fn chart_path(sha256: &str) -> Result<PathBuf> {
    let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    if sha256.is_empty() || sha256.len() > 80 || !sha256.bytes().all(plain) {
        return Err(Error::Folder {
            path: sha256.chars().take(80).collect(),
            source: std::io::Error::other(
                "not a chart's name: lowercase letters, digits and '-' only",
            ),
        });
    }
    let dir = home()?.join("charts");
    private_dir(&dir)?;
    Ok(dir.join(format!("{sha256}.tgz")))
}

/// Writes a chart's bytes to [`chart_path`] (atomically: a file of another name first, then renamed).
pub fn write_chart(sha256: &str, bytes: &[u8]) -> Result<PathBuf> {
    let path = chart_path(sha256)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let tmp = write_private_bytes(&dir, &format!(".{}.tgz", random_hex(8)), bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Removes the helm folders of console processes that no longer run; returns how many.
pub fn clean_leftovers() -> usize {
    let Ok(dir) = parent() else { return 0 };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive && std::fs::remove_dir_all(e.path()).is_ok() {
            tracing::info!(folder = %e.path().display(), "removed helm files left by a console that stopped");
            removed += 1;
        }
    }
    removed
}

/// One helm run (or a few for one cluster): its private folder and the cluster's kubeconfig.
pub struct Run {
    dir: PathBuf,
    /// Kept open for as long as the run: closing it frees an unnamed kubeconfig.
    _kubeconfig: Option<File>,
    kubeconfig_path: String,
}

impl Run {
    /// Prepares a run for the cluster whose kubeconfig is `kubeconfig` (YAML with credentials).
    pub fn new(kubeconfig: &str) -> Result<Run> {
        let dir = home()?.join(format!("run-{}", random_hex(12)));
        private_dir(&dir)?;
        let (file, path) = match unnamed(kubeconfig) {
            Some((f, p)) => (Some(f), p),
            None => {
                let p = write_private(&dir, "kubeconfig", kubeconfig)?;
                (None, p.display().to_string())
            }
        };
        Ok(Run {
            dir,
            _kubeconfig: file,
            kubeconfig_path: path,
        })
    }

    /// The path helm is given with `--kubeconfig`.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig_path
    }

    /// Writes a file (values, never secrets) in the run's private folder.
    pub fn write(&self, name: &str, contents: &str) -> Result<PathBuf> {
        write_private(&self.dir, name, contents)
    }

    /// Runs helm with `args` (add `--kubeconfig` and [`Run::kubeconfig`] yourself), killed if dropped.
    pub async fn helm(&self, helm: &Path, args: &[&str], action: &'static str) -> Result<String> {
        let home = home()?;
        let mut cmd = tokio::process::Command::new(helm);
        cmd.args(args)
            .env_clear()
            .env("HOME", &self.dir)
            .env("TMPDIR", &self.dir)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for k in PASSED_ON {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        let out = cmd.output().await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Missing {
                path: helm.display().to_string(),
            },
            _ => Error::Io(e),
        })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::Failed {
                action,
                message: String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .replace(&self.kubeconfig_path, "<kubeconfig>"),
            })
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The kubeconfig in an unnamed file and the `/proc` path helm opens it by, or None where unsupported.
fn unnamed(contents: &str) -> Option<(File, String)> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let dirs = [PathBuf::from("/dev/shm"), home().ok()?];
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let Ok(mut f) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o600)
            .open(dir)
        else {
            continue;
        };
        if f.write_all(contents.as_bytes()).is_err() || f.flush().is_err() {
            continue;
        }
        let path = format!("/proc/{}/fd/{}", std::process::id(), f.as_raw_fd());
        // helm opens the path anew, as another process would: check that this works here.
        let mut back = String::new();
        let readable = std::fs::File::open(&path)
            .and_then(|mut g| g.read_to_string(&mut back))
            .is_ok()
            && back == contents;
        let _ = f.rewind();
        if readable {
            return Some((f, path));
        }
    }
    None
}

fn write_private(dir: &Path, name: &str, contents: &str) -> Result<PathBuf> {
    write_private_bytes(dir, name, contents.as_bytes())
}

fn write_private_bytes(dir: &Path, name: &str, contents: &[u8]) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(contents)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_has_no_name_and_the_run_folder_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let run = Run::new("apiVersion: v1\nkind: Config\n").expect("run");
        assert!(
            run.kubeconfig().starts_with("/proc/"),
            "an unnamed file: {}",
            run.kubeconfig()
        );
        assert_eq!(
            std::fs::read_to_string(run.kubeconfig()).expect("readable by path"),
            "apiVersion: v1\nkind: Config\n"
        );
        // Twice: helm's loader opens the file more than once.
        assert!(std::fs::read_to_string(run.kubeconfig()).is_ok());
        let dir = run.dir.clone();
        assert_eq!(
            std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777,
            0o700
        );
        assert!(
            std::fs::read_dir(&dir).expect("list").next().is_none(),
            "nothing named in the run's folder"
        );
        let values = run.write("values.yaml", "{}").expect("write");
        assert_eq!(
            std::fs::metadata(&values)
                .expect("file")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let path = run.kubeconfig().to_string();
        drop(run);
        assert!(!dir.exists());
        assert!(
            std::fs::read_to_string(&path).is_err(),
            "freed with the run"
        );
    }

    #[test]
    fn folders_of_stopped_consoles_are_removed_and_ours_kept() {
        let ours = home().expect("home");
        let parent = ours.parent().expect("parent").to_path_buf();
        // A pid that cannot be running: above the kernel's maximum.
        let dead = parent.join("4194305-deadbeef");
        private_dir(&dead.join("run-x")).expect("dir");
        std::fs::write(dead.join("run-x/kubeconfig"), "token").expect("write");
        assert!(clean_leftovers() >= 1);
        assert!(!dead.exists());
        assert!(ours.exists());
    }

    #[tokio::test]
    async fn helm_dies_with_its_run() {
        // `sh` stands in for a helm that takes long (a --wait); the future is dropped, as when its job is
        // aborted or its lease lost: the process must not live on.
        let pid_file =
            std::env::temp_dir().join(format!("meshdeck-helm-kill-{}", std::process::id()));
        let run = Run::new("x").expect("run");
        let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
        let args = ["-c", script.as_str()];
        let slow = run.helm(Path::new("/bin/sh"), &args, "sleep");
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), slow).await;
        let pid = std::fs::read_to_string(&pid_file)
            .expect("pid")
            .trim()
            .to_string();
        let _ = std::fs::remove_file(&pid_file);
        let gone = async {
            while std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z "))
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), gone)
            .await
            .expect("helm was killed with its run");
    }

    #[tokio::test]
    async fn helm_sees_only_its_own_environment() {
        // `env` stands in for helm: it prints the environment it was given. The test process has plenty of
        // variables of its own (CARGO_*, the world's settings); none may reach the child.
        let run = Run::new("x").expect("run");
        let out = run
            .helm(Path::new("/usr/bin/env"), &[], "env")
            .await
            .expect("env runs");
        let keys: Vec<&str> = out.lines().filter_map(|l| l.split('=').next()).collect();
        for k in &keys {
            assert!(
                [
                    "HOME",
                    "TMPDIR",
                    "HELM_CACHE_HOME",
                    "HELM_CONFIG_HOME",
                    "HELM_DATA_HOME"
                ]
                .contains(k)
                    || PASSED_ON.contains(k),
                "unexpected variable {k} in {keys:?}"
            );
        }
        assert!(keys.contains(&"HELM_CACHE_HOME"));
    }
}
