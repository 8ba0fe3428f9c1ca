//! Building the extension for an ISA and assembling the importable folder `target/pkg/<arch>/`:
//! the `ferrojit` package from python/ with the library as `ferrojit/_ferrojit.so`, and
//! `sitecustomize.py` (so `FERROJIT=1` works in any process with the folder on PYTHONPATH).

use crate::arch::{pkg_dir, repo_root, Arch};
use crate::arm64;
use crate::run::check;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// Builds and assembles; returns the package folder.
pub fn build(arch: Arch, release: bool) -> Result<PathBuf> {
    if arch == Arch::Aarch64 && arch.emulated() && !arm64::ready() {
        arm64::setup()?;
    }
    let root = repo_root();
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&root).args([
        "build",
        "-q",
        "-p",
        "ferrojit",
        "--features",
        "extension-module",
    ]);
    if release {
        cmd.arg("--release");
    }
    if let Some(target) = arch.cross_target() {
        cmd.args(["--target", target]);
        if arch == Arch::Aarch64 {
            cmd.envs(arm64::cross_env());
        }
    }
    eprintln!(
        "xtask: building ferrojit for {}{}",
        arch.name(),
        if release { "" } else { " (debug)" }
    );
    check(&mut cmd).context("building the extension")?;
    let mut lib = root.join("target");
    if let Some(target) = arch.cross_target() {
        lib.push(target);
    }
    lib.push(if release { "release" } else { "debug" });
    lib.push("libferrojit.so");
    assemble(arch, &lib)
}

fn assemble(arch: Arch, lib: &std::path::Path) -> Result<PathBuf> {
    let dir = pkg_dir(arch);
    let pkg = dir.join("ferrojit");
    std::fs::create_dir_all(&pkg)?;
    let src = repo_root().join("python");
    for entry in std::fs::read_dir(src.join("ferrojit"))? {
        let path = entry?.path();
        if path.extension().map(|e| e == "py").unwrap_or(false) {
            std::fs::copy(&path, pkg.join(path.file_name().unwrap()))?;
        }
    }
    std::fs::copy(src.join("sitecustomize.py"), dir.join("sitecustomize.py"))?;
    // Replace rather than overwrite in place: a running process may have the old file mapped.
    let tmp = pkg.join("_ferrojit.so.tmp");
    std::fs::copy(lib, &tmp).with_context(|| format!("copying {}", lib.display()))?;
    std::fs::rename(&tmp, pkg.join("_ferrojit.so"))?;
    Ok(dir)
}
