//! The two ISAs and where their files live.

use std::path::PathBuf;

/// An instruction set ferrojit builds for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    #[value(name = "x86_64")]
    X86_64,
    #[value(name = "aarch64")]
    Aarch64,
}

impl Arch {
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Whether this ISA runs under emulation here.
    pub fn emulated(self) -> bool {
        self != Arch::host()
    }

    /// The cargo target triple for a cross build (None for the host).
    pub fn cross_target(self) -> Option<&'static str> {
        match (self, self.emulated()) {
            (Arch::Aarch64, true) => Some("aarch64-unknown-linux-gnu"),
            (Arch::X86_64, true) => Some("x86_64-unknown-linux-gnu"),
            _ => None,
        }
    }
}

/// The repository root (xtask lives one level below it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The importable folder a build is assembled in.
pub fn pkg_dir(arch: Arch) -> PathBuf {
    repo_root().join("target").join("pkg").join(arch.name())
}
