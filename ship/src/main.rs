//! `oci-image`: packs root-filesystem folders staged by `scripts/image` (one folder per layer) into an OCI
//! image layout, plus a `docker load`-able tar of that layout, with no daemon and no base image.
//!
//! Reproducible: the same folders and arguments give the same bytes, hence the same digest — entries sorted,
//! every time stamp the given `--created` (the commit's time), owners root unless `--owner` says otherwise,
//! modes reduced to 0755/0644 (and the sticky 1777 of a folder such as `/tmp`), gzip without a time or name,
//! JSON with its keys sorted.
//!
//! ```text
//! oci-image --out DIR [--tar FILE] --tag REPO:TAG --created UNIX_SECONDS
//!   --layer FOLDER=WHAT ...  --entrypoint ARG ... [--cmd ARG ...] --user UID:GID [--workdir PATH]
//!   [--port 3000/tcp ...] [--env K=V ...] [--label K=V ...] [--owner /PATH=UID:GID ...]
//! ```
use anyhow::{Context, Result, anyhow, bail};
use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os,
    RootFsBuilder, SCHEMA_VERSION,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

#[derive(Default, Debug)]
struct Args {
    out: PathBuf,
    tar: Option<PathBuf>,
    tag: String,
    created: i64,
    layers: Vec<(PathBuf, String)>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    user: String,
    workdir: Option<String>,
    ports: Vec<String>,
    env: Vec<String>,
    labels: BTreeMap<String, String>,
    owners: BTreeMap<String, (u64, u64)>,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut a = Args::default();
    let mut out = None;
    let mut created = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--tar" => a.tar = Some(PathBuf::from(value()?)),
            "--tag" => a.tag = value()?,
            "--created" => {
                let v = value()?;
                created = Some(
                    v.parse::<i64>()
                        .with_context(|| format!("--created {v:?}: not a Unix time"))?,
                )
            }
            "--layer" => {
                let v = value()?;
                let (dir, what) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--layer {v:?}: FOLDER=WHAT"))?;
                a.layers.push((PathBuf::from(dir), what.to_string()));
            }
            "--entrypoint" => a.entrypoint.push(value()?),
            "--cmd" => a.cmd.push(value()?),
            "--user" => a.user = value()?,
            "--workdir" => a.workdir = Some(value()?),
            "--port" => a.ports.push(value()?),
            "--env" => {
                let v = value()?;
                if !v.contains('=') {
                    bail!("--env {v:?}: K=V");
                }
                a.env.push(v);
            }
            "--label" => {
                let v = value()?;
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--label {v:?}: K=V"))?;
                a.labels.insert(k.to_string(), val.to_string());
            }
            "--owner" => {
                let v = value()?;
                let (path, ids) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--owner {v:?}: /PATH=UID:GID"))?;
                let (u, g) = ids
                    .split_once(':')
                    .ok_or_else(|| anyhow!("--owner {v:?}: /PATH=UID:GID"))?;
                let path = path.trim_matches('/').to_string();
                a.owners.insert(path, (u.parse()?, g.parse()?));
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    a.out = out.ok_or_else(|| anyhow!("--out DIR is needed"))?;
    a.created = created.ok_or_else(|| anyhow!("--created UNIX_SECONDS is needed"))?;
    if a.tag.is_empty() || !a.tag.contains(':') {
        bail!("--tag REPO:TAG is needed");
    }
    if a.layers.is_empty() || a.entrypoint.is_empty() || a.user.is_empty() {
        bail!("--layer, --entrypoint and --user are needed");
    }
    Ok(a)
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            size: 0,
        }
    }
    fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hash.finalize()), self.size)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every entry under `root`, relative, sorted bytewise (a folder before what it holds).
fn entries(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for e in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e?;
            let child = rel.join(e.file_name());
            if e.file_type()?.is_dir() {
                stack.push(child.clone());
            }
            out.push(child);
        }
    }
    out.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(out)
}

/// A layer written: digests and sizes.
struct Layer {
    /// Of the gzip blob.
    digest: String,
    size: u64,
    /// Of the uncompressed tar (the config's diff_id).
    diff_id: String,
    tar_size: u64,
}

/// Appends every entry under `root`, sorted, as the image wants it: every time `created`, owners root unless
/// `owners` names the path, modes 0755/0644 (1777 for a sticky folder).
fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    created: i64,
    owners: &BTreeMap<String, (u64, u64)>,
) -> Result<()> {
    for rel in entries(root)? {
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path)?;
        let name = rel
            .to_str()
            .ok_or_else(|| anyhow!("{}: not UTF-8", rel.display()))?;
        let mut h = tar::Header::new_gnu();
        h.set_mtime(created.max(0) as u64);
        let (uid, gid) = owners.get(name).copied().unwrap_or((0, 0));
        h.set_uid(uid);
        h.set_gid(gid);
        let ft = meta.file_type();
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(if meta.mode() & 0o1000 != 0 {
                0o1777
            } else {
                0o755
            });
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), io::empty())?;
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            tar.append_link(&mut h, name, fs::read_link(&path)?)?;
        } else if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            });
            h.set_size(meta.len());
            tar.append_data(&mut h, name, fs::File::open(&path)?)?;
        } else {
            bail!(
                "{}: only folders, files and symbolic links go in an image",
                path.display()
            );
        }
    }
    Ok(())
}

fn write_layer(a: &Args, root: &Path, blobs: &Path) -> Result<Layer> {
    let tmp = blobs.join(".layer.tmp");
    let file = io::BufWriter::new(fs::File::create(&tmp)?);
    let gz = GzBuilder::new()
        .mtime(0)
        .write(Hashing::new(file), Compression::new(6));
    let mut tar = tar::Builder::new(Hashing::new(gz));
    append_tree(&mut tar, root, a.created, &a.owners)?;
    let (gz, diff_id, tar_size) = tar.into_inner()?.finish();
    let (file, digest, size) = gz.finish()?.finish();
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, blobs.join(&digest))?;
    Ok(Layer {
        digest,
        size,
        diff_id,
        tar_size,
    })
}

/// Writes `value` as a blob; its descriptor.
fn write_blob(blobs: &Path, media: MediaType, value: &impl serde::Serialize) -> Result<Descriptor> {
    let bytes = to_bytes(value)?;
    let digest = hex(&Sha256::digest(&bytes));
    fs::write(blobs.join(&digest), &bytes)?;
    descriptor(media, &digest, bytes.len() as u64)
}

fn to_bytes(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    // JSON with every object's keys sorted, written by hand: the bytes (and the digest) never depend on a
    // map's order or on a serde_json feature another crate of the build turns on.
    let v = serde_json::to_value(value)?;
    let mut out = vec![];
    write_json(&v, &mut out)?;
    Ok(out)
}

fn write_json(v: &Value, out: &mut Vec<u8>) -> Result<()> {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(k)?);
                out.push(b':');
                write_json(&m[k], out)?;
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(v, out)?;
            }
            out.push(b']');
        }
        other => out.extend(serde_json::to_vec(other)?),
    }
    Ok(())
}

fn descriptor(media: MediaType, hex_digest: &str, size: u64) -> Result<Descriptor> {
    Ok(DescriptorBuilder::default()
        .media_type(media)
        .digest(Digest::from_str(&format!("sha256:{hex_digest}"))?)
        .size(size)
        .build()?)
}

fn rfc3339(unix: i64) -> Result<String> {
    Ok(time::OffsetDateTime::from_unix_timestamp(unix)?
        .format(&time::format_description::well_known::Rfc3339)?)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

fn run(a: &Args) -> Result<()> {
    if a.out.exists() && fs::read_dir(&a.out)?.next().is_some() {
        bail!(
            "{} exists and is not empty: name a new folder",
            a.out.display()
        );
    }
    let blobs = a.out.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let created = rfc3339(a.created)?;

    let mut layers = vec![];
    for (dir, what) in &a.layers {
        let l = write_layer(a, dir, &blobs)
            .with_context(|| format!("layer {what} from {}", dir.display()))?;
        layers.push((l, what.clone()));
    }

    let mut config = ConfigBuilder::default()
        .user(a.user.clone())
        .entrypoint(a.entrypoint.clone())
        .env(a.env.clone())
        .labels(
            a.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        );
    if !a.cmd.is_empty() {
        config = config.cmd(a.cmd.clone());
    }
    if !a.ports.is_empty() {
        config = config.exposed_ports(a.ports.clone());
    }
    if let Some(w) = &a.workdir {
        config = config.working_dir(w.clone());
    }
    let history = layers
        .iter()
        .map(|(_, what)| {
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(format!("scripts/image: {what}"))
                .build()
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let image_config = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config.build()?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(
                    layers
                        .iter()
                        .map(|(l, _)| format!("sha256:{}", l.diff_id))
                        .collect::<Vec<_>>(),
                )
                .build()?,
        )
        .history(history)
        .build()?;
    let config_desc = write_blob(&blobs, MediaType::ImageConfig, &image_config)?;

    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config_desc.clone())
        .layers(
            layers
                .iter()
                .map(|(l, _)| descriptor(MediaType::ImageLayerGzip, &l.digest, l.size))
                .collect::<Result<Vec<_>>>()?,
        )
        .annotations(
            a.labels
                .iter()
                .filter(|(k, _)| k.starts_with("org.opencontainers.image."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        )
        .build()?;
    let manifest_desc = write_blob(&blobs, MediaType::ImageManifest, &manifest)?;
    let manifest_hex = manifest_desc.digest().digest().to_string();

    // The index names the image: its tag for OCI tools, the whole reference for containerd's import.
    let (_, tag) = a.tag.rsplit_once(':').unwrap_or((&a.tag, "latest"));
    let mut named = manifest_desc.clone();
    named.set_annotations(Some(HashMap::from([
        (
            "org.opencontainers.image.ref.name".to_string(),
            tag.to_string(),
        ),
        ("io.containerd.image.name".to_string(), a.tag.clone()),
    ])));
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![named])
        .build()?;
    fs::write(a.out.join("index.json"), to_bytes(&index)?)?;
    fs::write(
        a.out.join("oci-layout"),
        to_bytes(&serde_json::json!({"imageLayoutVersion": "1.0.0"}))?,
    )?;
    // What `docker load` reads (older Dockers know only this file; newer ones read index.json too).
    let docker = serde_json::json!([{
        "Config": format!("blobs/sha256/{}", config_desc.digest().digest()),
        "RepoTags": [a.tag],
        "Layers": layers.iter().map(|(l, _)| format!("blobs/sha256/{}", l.digest)).collect::<Vec<_>>(),
    }]);
    fs::write(a.out.join("manifest.json"), to_bytes(&docker)?)?;

    if let Some(tar_path) = &a.tar {
        write_layout_tar(a, tar_path)?;
    }

    // The report, on stdout: what scripts and people read.
    let total_tar: u64 = layers.iter().map(|(l, _)| l.tar_size).sum();
    let total_gz: u64 = layers.iter().map(|(l, _)| l.size).sum();
    let mut out = io::stdout().lock();
    writeln!(out, "image {}  sha256:{manifest_hex}", a.tag)?;
    for (l, what) in &layers {
        writeln!(
            out,
            "  layer {what}: {} ({} compressed)",
            mb(l.tar_size),
            mb(l.size)
        )?;
    }
    writeln!(
        out,
        "  total: {} uncompressed, {} compressed",
        mb(total_tar),
        mb(total_gz)
    )?;
    writeln!(out, "layout: {}", a.out.display())?;
    if let Some(t) = &a.tar {
        writeln!(out, "docker load -i {}", t.display())?;
    }
    Ok(())
}

/// The layout as one tar (for `docker load`, `podman load`, `skopeo copy oci-archive:`), entries sorted.
fn write_layout_tar(a: &Args, path: &Path) -> Result<()> {
    let tmp = path.with_extension("tar.tmp");
    let mut tar = tar::Builder::new(io::BufWriter::new(fs::File::create(&tmp)?));
    // Nothing in a layout is owned by anyone but root, executable or sticky: the same rules give 0644/0755.
    append_tree(&mut tar, &a.out, a.created, &BTreeMap::new())?;
    tar.into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args).and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oci-image: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": "x"}});
        let bytes = to_bytes(&v).expect("serializes");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            r#"{"a":{"c":"x","d":[{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn arguments_need_the_essentials_and_say_which() {
        let err = parse(&["--out".into(), "x".into()]).expect_err("incomplete");
        assert!(err.to_string().contains("--created"), "{err}");
        let err = parse(&["--out".into()]).expect_err("no value");
        assert!(err.to_string().contains("--out needs a value"), "{err}");
        let err = parse(&["--owner".into(), "/data".into()]).expect_err("no ids");
        assert!(err.to_string().contains("UID:GID"), "{err}");
    }

    #[test]
    fn entries_come_sorted_with_folders_before_their_contents() {
        let dir = std::env::temp_dir().join(format!("oci-image-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("usr/bin")).expect("mkdir");
        fs::create_dir_all(dir.join("etc")).expect("mkdir");
        fs::write(dir.join("usr/bin/b"), "b").expect("write");
        fs::write(dir.join("etc/passwd"), "p").expect("write");
        let got: Vec<String> = entries(&dir)
            .expect("walks")
            .into_iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(got, ["etc", "etc/passwd", "usr", "usr/bin", "usr/bin/b"]);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
