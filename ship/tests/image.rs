//! The image, as shipped: `scripts/image` packs the console binary the other tests ran (the test build's
//! `meshdeck`), the browser files and the pinned helm. Checked: the layout is well formed (every digest and
//! size), the config (entrypoint, user, port, labels with the version and commit), two builds give the same
//! digest, and the root filesystem, unpacked, runs the console as user 65532 under `chroot` — it answers
//! `/healthz` and `/readyz`, serves its browser files and makes its store in `/data`.
//!
//! Needs what `scripts/test` provides: the console built (`target/debug/meshdeck`), the browser files
//! (`target/site`) and the test world's binaries (`MESHDECK_TESTENV_BIN`, for helm).
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Result<T = ()> = std::result::Result<T, String>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The target folder this test was built in (`…/target/debug/deps/image-…` → `…/target`).
fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no target folder above {}", exe.display()))
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

fn json(path: &Path) -> Result<Value> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A blob named by a descriptor, checked against its digest and size.
fn blob(layout: &Path, desc: &Value) -> Result<PathBuf> {
    let digest = desc["digest"]
        .as_str()
        .ok_or("a descriptor without a digest")?;
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("not sha256: {digest}"))?;
    let path = layout.join("blobs/sha256").join(hex);
    let size = std::fs::metadata(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if desc["size"].as_u64() != Some(size) {
        return Err(format!(
            "{digest}: size {size}, the descriptor says {}",
            desc["size"]
        ));
    }
    if sha256_file(&path)? != hex {
        return Err(format!("{digest}: content does not match its digest"));
    }
    Ok(path)
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn build_image(out: &Path, bin: &Path, site: &Path, helm: &Path) -> Result<String> {
    run(Command::new(repo().join("scripts/image"))
        .arg(out)
        .env("MESHDECK_IMAGE_BIN", bin)
        .env("MESHDECK_IMAGE_SITE", site)
        .env("MESHDECK_IMAGE_HELM", helm)
        .env("MESHDECK_OCI_IMAGE", env!("CARGO_BIN_EXE_oci-image")))
}

/// A plain HTTP/1.1 GET on loopback: status and body.
fn get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = vec![];
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {text:?}"))?;
    Ok((status, text))
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u")).is_ok_and(|u| u.trim() == "0")
}

/// `chroot` into the image's root filesystem as the image's user (or, without root, as root of a user
/// namespace: the files are the same, the user is not).
fn in_image(root: &Path, user: &str) -> Command {
    if is_root() {
        let mut c = Command::new(which("chroot"));
        c.arg(format!("--userspec={user}")).arg(root);
        c
    } else {
        let mut c = Command::new(which("unshare"));
        c.args(["--user", "--map-root-user", "chroot"]).arg(root);
        c
    }
}

#[test]
fn the_image_is_well_formed_reproducible_and_its_root_filesystem_runs_the_console() -> Result {
    let target = target_dir()?;
    let bin = target.join("debug/meshdeck");
    let site = target.join("site");
    if !bin.is_file() {
        return Err(format!(
            "no console at {}: build it first (cargo build -p server; scripts/test does)",
            bin.display()
        ));
    }
    if !site.join("pkg").is_dir() {
        return Err(format!(
            "no browser files in {}: build them first (cargo leptos build --release --split --frontend-only; scripts/test does)",
            site.display()
        ));
    }
    let helm = PathBuf::from(std::env::var("MESHDECK_TESTENV_BIN").map_err(|_| {
        "MESHDECK_TESTENV_BIN is not set: run through scripts/test, or set it to the folder testenv/build-bins prints"
    })?)
    .join("helm");
    let work = tempdir()?;

    // Built twice from the same inputs: the same bytes.
    let report = build_image(&work.join("a"), &bin, &site, &helm)?;
    eprintln!("{report}");
    build_image(&work.join("b"), &bin, &site, &helm)?;
    for f in ["index.json", "manifest.json", "oci-layout"] {
        let (a, b) = (
            std::fs::read(work.join("a").join(f)),
            std::fs::read(work.join("b").join(f)),
        );
        if a.map_err(|e| e.to_string())? != b.map_err(|e| e.to_string())? {
            return Err(format!("{f} differs between two builds of the same inputs"));
        }
    }
    if sha256_file(&work.join("a.tar"))? != sha256_file(&work.join("b.tar"))? {
        return Err("the image tars of two builds differ".into());
    }

    // The layout: index → manifest → config and layers, every digest and size right.
    let layout = work.join("a");
    if json(&layout.join("oci-layout"))?["imageLayoutVersion"] != "1.0.0" {
        return Err("oci-layout is not version 1.0.0".into());
    }
    let index = json(&layout.join("index.json"))?;
    let manifests = index["manifests"]
        .as_array()
        .ok_or("index.json lists no manifests")?;
    if manifests.len() != 1 {
        return Err(format!("index.json lists {} manifests", manifests.len()));
    }
    let m = &manifests[0];
    if m["mediaType"] != "application/vnd.oci.image.manifest.v1+json" {
        return Err(format!("manifest media type {}", m["mediaType"]));
    }
    let manifest = json(&blob(&layout, m)?)?;
    let config_path = blob(&layout, &manifest["config"])?;
    let config = json(&config_path)?;
    let layers = manifest["layers"].as_array().ok_or("no layers")?;
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or("no diff_ids")?;
    if layers.len() != 3 || diff_ids.len() != layers.len() {
        return Err(format!(
            "{} layers, {} diff_ids: expected base, helm, console",
            layers.len(),
            diff_ids.len()
        ));
    }

    // The config.
    let version_out = run(Command::new(&bin).arg("--version"))?;
    let version = version_out
        .split_whitespace()
        .nth(1)
        .ok_or("meshdeck --version printed no version")?;
    // The labels name the commit the binary names (the full id of its short one).
    let short = version_out
        .trim()
        .rsplit_once('(')
        .map(|(_, c)| c.trim_end_matches(')').to_string())
        .ok_or("meshdeck --version printed no commit")?;
    let commit = run(Command::new("git")
        .arg("-C")
        .arg(repo())
        .args(["rev-parse", &format!("{short}^{{commit}}")]))?;
    let c = &config["config"];
    let checks: [(&str, Value, Value); 7] = [
        (
            "Entrypoint",
            c["Entrypoint"].clone(),
            serde_json::json!(["/usr/bin/meshdeck"]),
        ),
        ("Cmd", c["Cmd"].clone(), serde_json::json!(["serve"])),
        ("User", c["User"].clone(), serde_json::json!("65532:65532")),
        (
            "ExposedPorts",
            c["ExposedPorts"].clone(),
            serde_json::json!({"3000/tcp": {}}),
        ),
        (
            "version label",
            c["Labels"]["org.opencontainers.image.version"].clone(),
            serde_json::json!(version),
        ),
        (
            "commit label",
            c["Labels"]["org.opencontainers.image.revision"].clone(),
            serde_json::json!(commit.trim()),
        ),
        (
            "os/architecture",
            serde_json::json!([config["os"], config["architecture"]]),
            serde_json::json!(["linux", "amd64"]),
        ),
    ];
    for (what, got, want) in checks {
        if got != want {
            return Err(format!("{what}: {got}, expected {want}"));
        }
    }
    let env: Vec<String> = c["Env"]
        .as_array()
        .ok_or("no Env")?
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    let docker = json(&layout.join("manifest.json"))?;
    if docker[0]["RepoTags"][0] != format!("ghcr.io/meshdeck/meshdeck:{version}")
        || docker[0]["Config"]
            != format!(
                "blobs/sha256/{}",
                config_path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or("")
            )
    {
        return Err(format!("manifest.json (docker load) names {docker}"));
    }

    // Unpacked in order (each diff_id checked), the root filesystem.
    let root = work.join("rootfs");
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let path = blob(&layout, layer)?;
        let mut tar = vec![];
        flate2::read::GzDecoder::new(std::fs::File::open(&path).map_err(|e| e.to_string())?)
            .read_to_end(&mut tar)
            .map_err(|e| e.to_string())?;
        if diff_id.as_str() != Some(&format!("sha256:{:x}", Sha256::digest(&tar))) {
            return Err(format!(
                "layer {}: its diff_id does not match its content",
                layer["digest"]
            ));
        }
        let mut archive = tar::Archive::new(&tar[..]);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(is_root());
        archive
            .unpack(&root)
            .map_err(|e| format!("unpacking {}: {e}", layer["digest"]))?;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = |p: &str| {
        std::fs::symlink_metadata(root.join(p)).map_err(|e| format!("/{p} in the image: {e}"))
    };
    if meta("tmp")?.permissions().mode() & 0o7777 != 0o1777 {
        return Err("/tmp is not 1777".into());
    }
    if is_root() && meta("data")?.uid() != 65532 {
        return Err("/data is not the user's".into());
    }
    let libs = std::fs::read_to_string(root.join("usr/share/doc/meshdeck/shared-libraries"))
        .map_err(|e| e.to_string())?;
    if !libs.contains("libc6") {
        return Err(format!(
            "the shared libraries are not listed with their Debian packages: {libs}"
        ));
    }
    meta("etc/ssl/certs/ca-certificates.crt")?;

    // The image's own binaries run inside it: the console names its commit, helm answers.
    let inside = run(in_image(&root, "65532:65532").args(["/usr/bin/meshdeck", "--version"]))?;
    if inside.trim() != version_out.trim() {
        return Err(format!(
            "inside the image: {inside:?}; outside: {version_out:?}"
        ));
    }
    let helm_version = run(in_image(&root, "65532:65532")
        .args(["/usr/bin/helm", "version", "--short"])
        .env("HOME", "/tmp"))?;
    if !helm_version.starts_with('v') {
        return Err(format!("helm in the image: {helm_version:?}"));
    }

    // `meshdeck serve` with the image's environment, as its user.
    let port = free_port()?;
    let mut cmd = in_image(&root, "65532:65532");
    cmd.env_clear().arg("/usr/bin/meshdeck").args(
        c["Cmd"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str()),
    );
    for kv in &env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.env("MESHDECK_ADDR", format!("127.0.0.1:{port}"))
        .env("MESHDECK_ADMIN_PASSWORD", "image-test-password-1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("console.log")).map_err(|e| e.to_string())?);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting the console in the image: {e}"))?;
    let log = || std::fs::read_to_string(work.join("console.log")).unwrap_or_default();
    let result = (|| -> Result {
        let start = Instant::now();
        loop {
            if let Ok((200, _)) = get(port, "/healthz") {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the console in the image stopped ({status}):\n{}",
                    log()
                ));
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(format!("no /healthz within 60 s:\n{}", log()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let (ready, body) = get(port, "/readyz")?;
        if ready != 200 {
            return Err(format!("/readyz: {ready} {body}"));
        }
        let (css, _) = get(port, "/pkg/meshdeck.css")?;
        let (page, html) = get(port, "/sign-in")?;
        if css != 200 || page != 200 || !html.contains("/pkg/meshdeck") {
            return Err(format!(
                "the browser files in the image: css {css}, sign-in page {page}"
            ));
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .map_err(|e| e.to_string())?;
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap_or_default()
            .to_string();
        if is_root() && !uid.contains("65532") {
            return Err(format!("the console runs as {uid}, not 65532"));
        }
        if !root.join("data/meshdeck.db").is_file() || !root.join("data/secret.key").is_file() {
            return Err("the store and the key are not in /data".into());
        }
        Ok(())
    })();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let stopped = child.wait().map_err(|e| e.to_string())?;
    result?;
    if !stopped.success() {
        return Err(format!(
            "the console did not stop cleanly on SIGTERM ({stopped}):\n{}",
            log()
        ));
    }
    std::fs::remove_dir_all(&work).map_err(|e| e.to_string())?;
    Ok(())
}

/// A program's full path from this process's PATH (the console's environment replaces PATH in the child),
/// else from /usr/sbin and /sbin (chroot lives there, and a PATH outside a login shell may lack them).
fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("meshdeck-image-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}
