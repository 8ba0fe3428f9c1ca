//! Running an ISA's CPython with the build importable: the host's `python3` for the host ISA,
//! the emulated arm64 interpreter (through binfmt_misc and qemu) for aarch64.

use crate::arch::{pkg_dir, Arch};
use crate::arm64;
use crate::build;
use crate::run::{capture, status};
use anyhow::{bail, Result};
use std::process::Command;

/// A command running that ISA's interpreter with the package (and, for arm64, the
/// pure-Python packages) on PYTHONPATH. Does not build.
pub fn command(arch: Arch) -> Command {
    let pkg = pkg_dir(arch);
    if arch.emulated() {
        let mut cmd = Command::new(arm64::python());
        cmd.env("QEMU_LD_PREFIX", arm64::sysroot());
        cmd.env("PYTHONPATH", join_paths(&[pkg, arm64::site()]));
        cmd
    } else {
        let mut cmd = Command::new("python3");
        let mut paths = vec![pkg];
        if let Some(old) = std::env::var_os("PYTHONPATH") {
            paths.extend(std::env::split_paths(&old));
        }
        cmd.env("PYTHONPATH", join_paths(&paths));
        cmd
    }
}

/// A command running the interpreter of the ISA's test venv (`wheel::fresh_venv` made it, with
/// ferrojit installed from its wheel); for arm64 the pure-Python test tools come from the arm64
/// site folder on PYTHONPATH.
pub fn venv_command(arch: Arch) -> Command {
    let mut cmd = Command::new(crate::wheel::venv_python(arch));
    cmd.env_remove("PYTHONPATH");
    if arch.emulated() {
        cmd.env("QEMU_LD_PREFIX", arm64::sysroot());
        cmd.env("PYTHONPATH", arm64::site());
    }
    cmd
}

fn join_paths(paths: &[std::path::PathBuf]) -> std::ffi::OsString {
    std::env::join_paths(paths).expect("paths without separators")
}

/// Checks that the host's python3 is 3.11.
pub fn check_host_python() -> Result<()> {
    let v = capture(
        Command::new("python3").args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]),
    )?;
    if v.trim() != "3.11" {
        bail!(
            "ferrojit needs CPython 3.11 as `python3`; this machine's python3 is {}",
            v.trim()
        );
    }
    Ok(())
}

/// Builds if needed (a release build), then runs the interpreter with `args`.
pub fn run(arch: Arch, args: &[String]) -> Result<i32> {
    if !arch.emulated() {
        check_host_python()?;
    }
    build::build(arch, true)?;
    status(command(arch).args(args))
}
