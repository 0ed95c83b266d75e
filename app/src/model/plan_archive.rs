//! A plan as a download: a tar archive with a folder per cluster and, in it, a folder per step holding each
//! object's YAML, its diff against the live object, and the commands to do the step by hand — so the whole
//! plan can be reviewed in a pull request or applied by someone else. Built in the browser (no server
//! round-trip); plain ustar that every `tar` reads.

use super::ClusterPlan;

const BLOCK: usize = 512;

/// A file or folder name part: lowercase letters, digits and '-' only, never empty.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(60).collect();
    // Never an empty path part (found by fuzzing: a title of only punctuation made `a//b`).
    if out.is_empty() {
        "unnamed".into()
    } else {
        out
    }
}

/// The files of the archive: `(path, content)`.
pub fn plan_files(plans: &[ClusterPlan]) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![];
    for c in plans {
        let root = format!("meshdeck-plan/{}", slug(&c.cluster));
        if let Some(e) = &c.error {
            files.push((format!("{root}/ERROR.txt"), format!("{e}\n").into_bytes()));
        }
        for (i, step) in c.steps.iter().enumerate() {
            let dir = format!("{root}/{:02}-{}", i + 1, slug(&step.title));
            let mut script =
                String::from("#!/bin/sh\n# What Meshdeck does in this step, by hand.\nset -e\n");
            for cmd in &step.commands {
                script.push_str(cmd);
                script.push('\n');
            }
            files.push((format!("{dir}/commands.sh"), script.into_bytes()));
            for o in &step.objects {
                let base = match &o.namespace {
                    Some(ns) => format!("{}-{}-{}", slug(&o.kind), slug(ns), slug(&o.name)),
                    None => format!("{}-{}", slug(&o.kind), slug(&o.name)),
                };
                files.push((format!("{dir}/{base}.yaml"), o.yaml.clone().into_bytes()));
                if let Some(d) = &o.detail {
                    files.push((
                        format!("{dir}/{base}.{}.txt", slug(&o.change)),
                        format!("{d}\n").into_bytes(),
                    ));
                }
            }
        }
    }
    files
}

fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    field[width] = 0;
}

/// A ustar archive of `files` (paths up to 255 bytes: the folder part goes in the header's prefix).
pub fn tar(files: &[(String, Vec<u8>)], mtime: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, data) in files {
        let mut h = [0u8; BLOCK];
        let (prefix, name) = if path.len() <= 100 {
            ("", path.as_str())
        } else {
            match path.rsplit_once('/') {
                Some((p, n)) if p.len() <= 155 && n.len() <= 100 => (p, n),
                _ => ("", &path[path.len().saturating_sub(100)..]),
            }
        };
        h[..name.len()].copy_from_slice(name.as_bytes());
        let mode = if path.ends_with(".sh") { 0o755 } else { 0o644 };
        octal(&mut h[100..108], mode);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], mtime);
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
        // The checksum is computed with its own field as spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(text.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

/// Standard base64 (for a `data:` download link).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PlanObject, PlanStep};

    fn plan() -> Vec<ClusterPlan> {
        vec![ClusterPlan {
            cluster: "c1".into(),
            error: None,
            steps: vec![PlanStep {
                title: "Control plane".into(),
                objects: vec![PlanObject {
                    kind: "ServiceMeshController".into(),
                    namespace: Some("gloo-mesh".into()),
                    name: "managed-istio".into(),
                    yaml: "kind: ServiceMeshController\n".into(),
                    change: "update".into(),
                    detail: Some("-a\n+b".into()),
                }],
                commands: vec!["kubectl apply --server-side -f smc.yaml".into()],
            }],
        }]
    }

    #[test]
    fn the_plan_is_a_folder_per_cluster_and_step() {
        let names: Vec<String> = plan_files(&plan()).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            names,
            [
                "meshdeck-plan/c1/01-control-plane/commands.sh",
                "meshdeck-plan/c1/01-control-plane/servicemeshcontroller-gloo-mesh-managed-istio.yaml",
                "meshdeck-plan/c1/01-control-plane/servicemeshcontroller-gloo-mesh-managed-istio.update.txt",
            ]
        );
    }

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }

    /// The archive is read back by the system's `tar`, long paths included.
    #[test]
    fn system_tar_reads_the_archive() {
        let mut files = plan_files(&plan());
        let long = format!("meshdeck-plan/{}/file.yaml", "d".repeat(120));
        files.push((long.clone(), b"x: 1\n".to_vec()));
        let bytes = tar(&files, 1_700_000_000);
        assert_eq!(bytes.len() % BLOCK, 0);
        let dir = std::env::temp_dir().join(format!("meshdeck-tar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("plan.tar");
        std::fs::write(&file, &bytes).expect("write");
        let out = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&file)
            .arg("-C")
            .arg(&dir)
            .output()
            .expect("tar runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (path, data) in &files {
            assert_eq!(&std::fs::read(dir.join(path)).expect(path), data, "{path}");
        }
        let script = dir.join("meshdeck-plan/c1/01-control-plane/commands.sh");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&script)
                .expect("script")
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
