//! Wheels and the environments the tests run in: `cargo xtask wheel [--arch A]` builds
//! `target/wheels/<arch>/ferrojit-*.whl` with maturin (the PEP 517 backend `pyproject.toml`
//! names, cross-building for aarch64 against the emulated sysroot), and [`fresh_venv`] installs
//! that wheel with pip into a new virtual environment of the ISA's interpreter, as a user would.

use crate::arch::{repo_root, Arch};
use crate::arm64;
use crate::run::{capture, check};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the wheel for `arch`; returns its path.
pub fn build(arch: Arch) -> Result<PathBuf> {
    if arch == Arch::Aarch64 && arch.emulated() && !arm64::ready() {
        arm64::setup()?;
    }
    ensure_host_packages("maturin", &["maturin>=1.9,<2"])?;
    let wheels_dir = repo_root().join("target/wheels");
    std::fs::create_dir_all(&wheels_dir)?;
    // Builds may run at once (the lab's end-to-end tests each ask for the wheels): one at a
    // time, each into its own staging folder, and the wheel moved into place by a rename, so
    // that a wheel someone is installing is never removed or half-written under them.
    let lock = std::fs::File::create(wheels_dir.join(".build.lock"))?;
    lock.lock().context("locking target/wheels/.build.lock")?;
    let out = wheels_dir.join(arch.name());
    let staging = wheels_dir.join(format!(".staging-{}-{}", arch.name(), std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let mut cmd = Command::new("python3");
    cmd.current_dir(repo_root())
        .args(["-m", "maturin", "build", "--release", "--quiet", "--out"])
        .arg(&staging)
        // The host's 3.11 answers maturin's questions about the interpreter; for aarch64 the
        // sysroot's sysconfig data does (PYO3_CROSS_LIB_DIR in the cross environment).
        .args(["--interpreter", "python3.11"]);
    if let Some(target) = arch.cross_target() {
        cmd.args(["--target", target]);
        if arch == Arch::Aarch64 {
            cmd.envs(arm64::cross_env());
        }
    }
    eprintln!("xtask: building the {} wheel (maturin)", arch.name());
    check(&mut cmd)
        .context("building the wheel (is maturin installed? `python3 -m pip install maturin`)")?;
    let built = wheels_in(&staging)?;
    let [one] = built.as_slice() else {
        bail!(
            "expected one wheel in {}, found {:?}",
            staging.display(),
            built
        );
    };
    std::fs::create_dir_all(&out)?;
    let name = one.file_name().context("a wheel file name")?;
    let placed = out.join(name);
    std::fs::rename(one, &placed)?;
    // Wheels of another version left from earlier builds.
    for old in wheels_in(&out)? {
        if old != placed {
            std::fs::remove_file(old)?;
        }
    }
    std::fs::remove_dir_all(&staging)?;
    Ok(placed)
}

/// The `.whl` files in `dir`.
fn wheels_in(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect())
}

/// The interpreter of the virtual environment `target/venv/<arch>`.
pub fn venv_python(arch: Arch) -> PathBuf {
    repo_root()
        .join("target/venv")
        .join(arch.name())
        .join("bin/python")
}

/// Builds the wheel, makes `target/venv/<arch>` afresh with the ISA's interpreter, and installs
/// the wheel into it with pip (run by that interpreter, so pip checks the wheel's tags against
/// it). The host's venv sees the host's site-packages (pytest, pyperf); the arm64 one gets its
/// test tools from the arm64 site folder on PYTHONPATH (see `python::venv_command`).
pub fn fresh_venv(arch: Arch) -> Result<PathBuf> {
    let wheel = build(arch)?;
    let dir = venv_python(arch)
        .parent()
        .and_then(Path::parent)
        .expect("venv/bin/python")
        .to_path_buf();
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let mut make = interpreter(arch);
    make.args(["-m", "venv", "--without-pip", "--system-site-packages"])
        .arg(&dir);
    check(&mut make).context("creating the virtual environment")?;
    let python = venv_python(arch);
    eprintln!(
        "xtask: installing {} into {}",
        wheel.file_name().unwrap().to_string_lossy(),
        dir.display()
    );
    let mut install = Command::new("python3");
    install
        .args(["-m", "pip", "--python"])
        .arg(&python)
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-index",
        ])
        .arg(&wheel);
    if arch.emulated() {
        install.env("QEMU_LD_PREFIX", arm64::sysroot());
    }
    check(&mut install).context("installing the wheel with pip")?;
    let mut probe = Command::new(&python);
    probe.args([
        "-c",
        "import ferrojit, sys; print(ferrojit.__version__, ferrojit.__file__)",
    ]);
    if arch.emulated() {
        probe.env("QEMU_LD_PREFIX", arm64::sysroot());
    }
    let out = capture(probe.env_remove("PYTHONPATH"))?;
    if !out.contains(&*dir.to_string_lossy()) {
        bail!("the venv imports ferrojit from elsewhere: {}", out.trim());
    }
    Ok(python)
}

/// Installs PyPI packages into the host's python3 when `import MODULES` fails there (a fresh
/// machine).
pub fn ensure_host_packages(modules: &str, requirements: &[&str]) -> Result<()> {
    let present = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!(
            "xtask: installing {} for the host's python3",
            requirements.join(" ")
        );
        check(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(requirements),
        )
        .with_context(|| format!("installing {}", requirements.join(" ")))?;
    }
    Ok(())
}

/// The ISA's base interpreter (no ferrojit on its path).
fn interpreter(arch: Arch) -> Command {
    if arch.emulated() {
        let mut cmd = Command::new(arm64::python());
        cmd.env("QEMU_LD_PREFIX", arm64::sysroot());
        cmd
    } else {
        Command::new("python3")
    }
}
