//! Records the commit the binary is built from (`meshdeck --version`): `MESHDECK_COMMIT` when the build sets
//! it (an image build from an archive), else git's HEAD, else "unknown".
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MESHDECK_COMMIT");
    let commit = std::env::var("MESHDECK_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        });
    // Rebuild when HEAD moves (a commit, a checkout).
    if let Ok(out) = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        && out.status.success()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Ok(head) = std::fs::read_to_string(format!("{dir}/HEAD"))
            && let Some(r) = head.strip_prefix("ref: ")
        {
            // A ref packed away has no file of its own (a missing file would rerun this every build).
            let loose = format!("{dir}/{}", r.trim());
            for f in [loose, format!("{dir}/packed-refs")] {
                if std::path::Path::new(&f).exists() {
                    println!("cargo:rerun-if-changed={f}");
                }
            }
        }
    }
    println!(
        "cargo:rustc-env=MESHDECK_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
}
