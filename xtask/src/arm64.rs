//! The AArch64 side on an x86-64 machine (see shared/design/AARCH64.md): Debian's cross
//! toolchain and qemu-user, an arm64 CPython 3.11 unpacked into a sysroot, pure-Python packages
//! for it, and binfmt_misc so that arm64 programs (pyperf's workers, test subprocesses) start
//! under qemu like native ones.
//!
//! Everything lives in `$FERROJIT_ARM64_ROOT` (default `~/.cache/ferrojit/arm64`), outside the
//! repository so fresh clones reuse it; a stamp file makes a second `setup-arm64` fast.

use crate::run::{capture, check};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bump when the set-up changes, so existing roots are completed.
const STAMP: &str = "ferrojit-arm64-setup-v3";

/// Host packages: the cross C toolchain, Debian's rustc with the arm64 standard library, qemu.
const HOST_PACKAGES: &[&str] = &[
    "gcc-aarch64-linux-gnu",
    "libc6-dev-arm64-cross",
    "binutils-aarch64-linux-gnu",
    "qemu-user",
    "qemu-user-binfmt",
    "rustc-web",
    "libstd-rust-web-dev:arm64",
];

/// The arm64 CPython and the libraries it loads, unpacked into the sysroot.
/// The C library comes from the same Debian build as everything else here: qemu looks up the
/// dynamic loader and libc.so.6 in the sysroot first and on the host second, and a loader and a
/// libc from different builds (say the cross toolchain's copy and the host's multiarch libc6:arm64)
/// share private structures that differ; the first thread started then spins for ever.
const SYSROOT_PACKAGES: &[&str] = &[
    "libc6:arm64",
    "libgcc-s1:arm64",
    "libstdc++6:arm64",
    "python3.11-minimal:arm64",
    "libpython3.11-minimal:arm64",
    "libpython3.11-stdlib:arm64",
    "libpython3.11:arm64",
    "libpython3.11-dev:arm64",
    "python3.11:arm64",
    "libpython3.11-testsuite",
    "libexpat1:arm64",
    "zlib1g:arm64",
    "libffi8:arm64",
    "libssl3:arm64",
    "libbz2-1.0:arm64",
    "liblzma5:arm64",
    "libncursesw6:arm64",
    "libtinfo6:arm64",
    "libreadline8:arm64",
    "libsqlite3-0:arm64",
    "libuuid1:arm64",
    "libdb5.3:arm64",
    "libgdbm6:arm64",
    "libnsl2:arm64",
    "libtirpc3:arm64",
    "libcrypt1:arm64",
    "media-types",
];

/// Pure-Python packages for the arm64 interpreter, pinned.
const SITE_PACKAGES: &[&str] = &[
    "pyperf==2.10.0",
    "pyperformance==1.14.0",
    "pytest==9.2.0",
    "iniconfig==2.3.1",
    "packaging==26.3",
    "pluggy==1.7.0",
    "pygments==2.20.0",
    "pytest-xdist==3.8.0",
    "execnet==2.1.2",
];

/// The folder everything arm64 lives in.
pub fn root() -> PathBuf {
    match std::env::var_os("FERROJIT_ARM64_ROOT") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/ferrojit/arm64"),
    }
}

pub fn sysroot() -> PathBuf {
    root().join("sysroot")
}

pub fn site() -> PathBuf {
    root().join("site")
}

/// The arm64 interpreter (started through binfmt_misc and qemu).
pub fn python() -> PathBuf {
    sysroot().join("usr/bin/python3.11")
}

/// Whether a complete set-up exists.
pub fn ready() -> bool {
    root().join(STAMP).exists()
}

/// Sets everything up; fast when done already.
pub fn setup() -> Result<()> {
    if ready() && binfmt_registered() {
        eprintln!("xtask: arm64 set-up is complete in {}", root().display());
        ensure_site_packages()?;
        return verify();
    }
    install_host_packages().context("installing the cross toolchain and qemu")?;
    register_binfmt().context("registering qemu-aarch64 with binfmt_misc")?;
    if !ready() {
        build_sysroot().context("unpacking the arm64 CPython sysroot")?;
        install_site_packages().context("installing pure-Python packages for the arm64 CPython")?;
        std::fs::write(root().join(STAMP), "ok\n")?;
    } else {
        ensure_site_packages()?;
    }
    verify()
}

fn missing_packages() -> Vec<&'static str> {
    HOST_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg")
                .args(["-s", p])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .collect()
}

fn install_host_packages() -> Result<()> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let arches = capture(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    if !arches.lines().any(|l| l.trim() == "arm64") {
        check(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
    }
    check(Command::new("apt-get").args(["update", "-qq"]))?;
    check(
        Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn binfmt_registered() -> bool {
    Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists()
}

/// Lets the kernel start arm64 executables through qemu (QEMU_LD_PREFIX points it at the
/// sysroot), so that programs the emulated interpreter starts are emulated too.
fn register_binfmt() -> Result<()> {
    if binfmt_registered() {
        return Ok(());
    }
    if !Path::new("/proc/sys/fs/binfmt_misc/register").exists() {
        check(Command::new("mount").args([
            "-t",
            "binfmt_misc",
            "binfmt_misc",
            "/proc/sys/fs/binfmt_misc",
        ]))?;
    }
    let conf = std::fs::read_to_string("/usr/lib/binfmt.d/qemu-aarch64.conf")
        .context("qemu-user-binfmt's qemu-aarch64.conf")?;
    let line = conf
        .lines()
        .find(|l| l.starts_with(':'))
        .context("no registration line in qemu-aarch64.conf")?;
    std::fs::write("/proc/sys/fs/binfmt_misc/register", line)
        .context("writing the binfmt_misc registration")?;
    if !binfmt_registered() {
        bail!("qemu-aarch64 did not appear in /proc/sys/fs/binfmt_misc");
    }
    Ok(())
}

fn build_sysroot() -> Result<()> {
    let debs = root().join("debs");
    if debs.exists() {
        std::fs::remove_dir_all(&debs)?;
    }
    std::fs::create_dir_all(&debs)?;
    eprintln!("xtask: downloading the arm64 CPython packages");
    check(
        Command::new("apt-get")
            .arg("download")
            .args(SYSROOT_PACKAGES)
            .current_dir(&debs),
    )
    .context("apt-get download (run `apt-get update` if the package lists are old)")?;
    // Start from an empty sysroot so that nothing from an older set-up is mixed in.
    let sysroot = sysroot();
    if sysroot.exists() {
        std::fs::remove_dir_all(&sysroot)?;
    }
    std::fs::create_dir_all(&sysroot)?;
    for entry in std::fs::read_dir(&debs)? {
        let path = entry?.path();
        if path.extension().map(|e| e == "deb").unwrap_or(false) {
            check(Command::new("dpkg").arg("-x").arg(&path).arg(&sysroot))?;
        }
    }
    Ok(())
}

/// Records which pinned packages the site folder holds, so that a set-up made before the list
/// changed gets the new ones without unpacking the sysroot again.
fn site_stamp() -> PathBuf {
    root().join("site-packages.txt")
}

fn ensure_site_packages() -> Result<()> {
    let wanted = SITE_PACKAGES.join("\n");
    if std::fs::read_to_string(site_stamp()).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    install_site_packages().context("installing pure-Python packages for the arm64 CPython")
}

fn install_site_packages() -> Result<()> {
    eprintln!(
        "xtask: installing {} for the arm64 CPython",
        SITE_PACKAGES.join(" ")
    );
    check(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--upgrade",
                "--target",
            ])
            .arg(site())
            .args(SITE_PACKAGES),
    )?;
    std::fs::write(site_stamp(), SITE_PACKAGES.join("\n"))?;
    Ok(())
}

fn verify() -> Result<()> {
    // `timeout`: a broken set-up tends to hang (see SYSROOT_PACKAGES), and should fail instead.
    let out = capture(
        Command::new("timeout")
            .arg("300")
            .arg(python())
            .args([
                "-c",
                "import sys, platform, threading, pyperf, pytest, xdist\n\
                 t = threading.Thread(target=print, args=('thread ok',)); t.start(); t.join()\n\
                 print(platform.machine(), sys.version.split()[0])",
            ])
            .env("QEMU_LD_PREFIX", sysroot())
            .env("PYTHONPATH", site()),
    )
    .context("running the arm64 CPython under qemu")?;
    eprintln!(
        "xtask: arm64 CPython runs: {}",
        out.trim().replace('\n', "; ")
    );
    if !out.contains("thread ok\naarch64 3.11") {
        bail!("unexpected interpreter: {out}");
    }
    Ok(())
}

/// Environment for cross-building the extension (and Rust tests) for arm64.
pub fn cross_env() -> Vec<(String, String)> {
    let s = sysroot();
    let lib = s.join("usr/lib/aarch64-linux-gnu");
    let rustflags = format!(
        "-L native={} -C link-arg=-Wl,-rpath-link,{}:{}",
        lib.display(),
        lib.display(),
        s.join("lib/aarch64-linux-gnu").display()
    );
    vec![
        ("RUSTC".into(), "/usr/bin/rustc".into()),
        ("RUSTDOC".into(), "/usr/bin/rustdoc".into()),
        (
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER".into(),
            "aarch64-linux-gnu-gcc".into(),
        ),
        (
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS".into(),
            rustflags,
        ),
        (
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER".into(),
            format!("qemu-aarch64 -L {}", s.display()),
        ),
        (
            "CC_aarch64_unknown_linux_gnu".into(),
            "aarch64-linux-gnu-gcc".into(),
        ),
        (
            "PYO3_CROSS_LIB_DIR".into(),
            s.join("usr/lib/python3.11").display().to_string(),
        ),
        ("PYO3_CROSS_PYTHON_VERSION".into(), "3.11".into()),
        (
            "FERROJIT_PYTHON_INCLUDE".into(),
            format!(
                "{}:{}:{}",
                s.join("usr/include/python3.11").display(),
                s.join("usr/include/aarch64-linux-gnu/python3.11").display(),
                s.join("usr/include").display()
            ),
        ),
        ("QEMU_LD_PREFIX".into(), s.display().to_string()),
    ]
}
