//! `cargo xtask test`: for each ISA, the Rust tests (run under qemu for aarch64: the encoders,
//! the allocator, and generated code executed for real) and then the Python suite, run by a fresh
//! venv of that ISA's interpreter with ferrojit installed from its wheel (differential
//! runs against plain CPython, the API, richards under pyperf, CPython's regression tests,
//! snapshots). Keeps going after a failing step so one run shows
//! every failure, and exits non-zero if any step failed.

use crate::arch::{repo_root, Arch};
use crate::arm64;
use crate::python;
use crate::run::{capture, status};
use crate::wheel;
use anyhow::Result;
use std::process::Command;
use std::time::Instant;

struct Step {
    name: String,
    ok: bool,
    seconds: f64,
}

pub fn run(arch: Option<Arch>, pytest_args: &[String]) -> Result<i32> {
    let arches = match arch {
        Some(a) => vec![a],
        None => vec![
            Arch::host(),
            if Arch::host() == Arch::X86_64 {
                Arch::Aarch64
            } else {
                Arch::X86_64
            },
        ],
    };
    let mut steps = Vec::new();
    for a in arches {
        if a.emulated() && a == Arch::Aarch64 {
            arm64::setup()?;
        } else if a.emulated() {
            eprintln!("xtask: no emulated {} here; skipping it", a.name());
            continue;
        }
        steps.push(timed(format!("{}: Rust tests", a.name()), || rust_tests(a)));
        steps.push(timed(format!("{}: Python tests", a.name()), || {
            python_tests(a, pytest_args)
        }));
    }
    if arch.is_none() {
        if Arch::host() == Arch::X86_64 {
            steps.push(timed(
                "x86_64: reference leaks".to_string(),
                crate::regrtest::leak_hunt,
            ));
        }
        steps.push(timed("lab: end-to-end".to_string(), lab_end_to_end));
    } else {
        eprintln!("xtask: the reference-leak hunt and the lab's end-to-end tests run when both ISAs are tested (no --arch)");
    }
    eprintln!("\nxtask test summary:");
    for s in &steps {
        eprintln!(
            "  {:<28} {:>4}  {:.0}s",
            s.name,
            if s.ok { "ok" } else { "FAIL" },
            s.seconds
        );
    }
    let failed = steps.iter().filter(|s| !s.ok).count();
    println!("xtask: {} passed, {} failed", steps.len() - failed, failed);
    Ok(if failed == 0 { 0 } else { 1 })
}

fn timed(name: String, f: impl FnOnce() -> Result<bool>) -> Step {
    eprintln!("\n== {name}");
    let start = Instant::now();
    let ok = match f() {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("xtask: {name}: {e:#}");
            false
        }
    };
    Step {
        name,
        ok,
        seconds: start.elapsed().as_secs_f64(),
    }
}

fn rust_tests(arch: Arch) -> Result<bool> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(repo_root()).args(["test", "--workspace"]);
    // insta otherwise spawns `cargo metadata` to find the workspace, and a fork from the
    // multi-threaded test binary under qemu-user can deadlock before its exec.
    cmd.env("INSTA_WORKSPACE_ROOT", repo_root());
    if let Some(target) = arch.cross_target() {
        cmd.args([
            "--target",
            target,
            "--exclude",
            "xtask",
            "--exclude",
            "ferrojit-lab",
            // A plugin for the host's qemu: it never runs on the emulated ISA.
            "--exclude",
            "ferrojit-qemu-insn-count",
        ]);
        if arch == Arch::Aarch64 {
            cmd.envs(arm64::cross_env());
        }
    } else {
        // The ferrojit crate's tests link libpython (no extension-module feature).
        let libdir = capture(Command::new("python3").args([
            "-c",
            "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))",
        ]))?;
        cmd.env("LD_LIBRARY_PATH", libdir.trim());
    }
    Ok(status(&mut cmd)? == 0)
}

fn python_tests(arch: Arch, extra: &[String]) -> Result<bool> {
    if !arch.emulated() {
        python::check_host_python()?;
        wheel::ensure_host_packages("xdist", &["pytest-xdist==3.8.0"])?;
    }
    // The tests import ferrojit as users get it: installed from its wheel into a fresh venv.
    wheel::fresh_venv(arch)?;
    let mut cmd = python::venv_command(arch);
    cmd.current_dir(repo_root())
        .args(["-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"]);
    // Every test runs programs in fresh processes: spread them over the machine's cores
    // (pytest-xdist), unless the caller chose a worker count.
    if !extra
        .iter()
        .any(|a| a == "-n" || a.starts_with("--numprocesses"))
    {
        cmd.args(["-n", &parallel_workers().to_string()]);
    }
    cmd.args(extra);
    Ok(status(&mut cmd)? == 0)
}

fn parallel_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
}

/// The lab's end-to-end tests (loopback sshd, the emulated host, headless Chromium), which need
/// ferrojit's wheels for both ISAs; ignored under a bare `cargo test`, run here.
fn lab_end_to_end() -> Result<bool> {
    wheel::build(Arch::X86_64)?;
    wheel::build(Arch::Aarch64)?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(repo_root()).args([
        "test",
        "-p",
        "ferrojit-lab",
        "--test",
        "e2e",
        "--",
        "--include-ignored",
        "--test-threads=1",
    ]);
    Ok(status(&mut cmd)? == 0)
}
