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

/// Builds for another CPython 3.11 of this machine's ISA, named by its executable (e.g.
/// Debian's debug build `python3.11d`): pyo3 and the layout probe take that interpreter's
/// configuration and headers, in their own target folder (`target/py-NAME/`), and the package
/// goes to `target/pkg/<arch>-NAME/`. Returns the package folder.
pub fn build_for_python(python: &str) -> Result<PathBuf> {
    let name = std::path::Path::new(python)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .with_context(|| format!("{python:?} does not name a Python executable"))?
        .to_string();
    let probe = Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .with_context(|| {
            format!("running {python}: is it installed (e.g. apt-get install python3.11-dbg)?")
        })?;
    let version = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    if !probe.status.success() || version != "3.11" {
        anyhow::bail!(
            "{python} is not a CPython 3.11 (it reports {version:?}); ferrojit supports 3.11 only"
        );
    }
    let root = repo_root();
    let target = root.join("target").join(format!("py-{name}"));
    eprintln!("xtask: building ferrojit for {python}");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&root)
        .args([
            "build",
            "-q",
            "--release",
            "-p",
            "ferrojit",
            "--features",
            "extension-module",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .env("PYO3_PYTHON", python)
        .env_remove("FERROJIT_PYTHON_INCLUDE");
    check(&mut cmd).with_context(|| format!("building the extension for {python}"))?;
    let dir = pkg_dir(Arch::host()).with_file_name(format!("{}-{name}", Arch::host().name()));
    assemble_into(&dir, &target.join("release").join("libferrojit.so"))
}

fn assemble(arch: Arch, lib: &std::path::Path) -> Result<PathBuf> {
    assemble_into(&pkg_dir(arch), lib)
}

fn assemble_into(dir: &std::path::Path, lib: &std::path::Path) -> Result<PathBuf> {
    let dir = dir.to_path_buf();
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
