//! `cargo xtask`: ferrojit's developer commands. Every command is non-interactive (scripts and CI
//! drive them), prints progress on stderr, and exits non-zero on failure.
//!
//! - `setup-arm64`: the cross toolchain, qemu, and an emulated Debian arm64 CPython 3.11 (idempotent)
//! - `build [--arch A] [--debug]`: the extension for an ISA, assembled in `target/pkg/<arch>/`
//! - `python [--arch A] -- ARGS`: that ISA's CPython with the build importable
//! - `test [--arch A] [-- PYTEST-ARGS]`: the whole test suite for one ISA, or both
//! - `wheel [--arch A]`: the wheel pip installs, in `target/wheels/<arch>/` (maturin)
//! - `bench [--arch A] [--fast]`: richards through pyperf with and without the JIT
//! - `count [--arch A,B] [--disable OPTS] [--hot DIR] [BENCH[:LOOPS]...]`: instructions of one timed value
//!   (callgrind; with --arch, the qemu plugin per ISA, generated code apart)
//! - `regrtest [--all | TEST...] [--jobs N] [--timeout SECS] [--out DIR] [--jit-only]`: CPython's
//!   regression suite plain and with the JIT at threshold 0, and the modules failing only with it

mod arch;
mod arm64;
mod bench;
mod build;
mod count;
mod python;
mod regrtest;
mod run;
mod test;
mod wheel;

use anyhow::Result;
use arch::Arch;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ferrojit developer commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the AArch64 cross toolchain and qemu, and unpack an arm64 CPython 3.11 (idempotent).
    SetupArm64,
    /// Build the extension for an ISA into target/pkg/<arch>/.
    Build {
        #[arg(long, value_enum)]
        arch: Option<Arch>,
        /// An unoptimised build with debug assertions (the allocator checker on).
        #[arg(long)]
        debug: bool,
        /// Build for another CPython 3.11 of this machine's ISA instead, by its executable
        /// (e.g. python3.11d, Debian's debug build, for reference-leak runs), into
        /// target/pkg/<arch>-<name>/.
        #[arg(long, conflicts_with_all = ["arch", "debug"])]
        python: Option<String>,
    },
    /// Run that ISA's CPython (under qemu for aarch64) with ferrojit importable.
    Python {
        #[arg(long, value_enum)]
        arch: Option<Arch>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the whole test suite for one ISA (both when --arch is not given).
    Test {
        #[arg(long, value_enum)]
        arch: Option<Arch>,
        /// Extra arguments for pytest.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        pytest_args: Vec<String>,
    },
    /// Build the wheel for an ISA into target/wheels/<arch>/ (aarch64: cross-built).
    Wheel {
        #[arg(long, value_enum)]
        arch: Option<Arch>,
    },
    /// pyperformance's richards through pyperf with and without the JIT, and the speed-up.
    Bench {
        #[arg(long, value_enum)]
        arch: Option<Arch>,
        /// Fewer processes and values: a quick look, not a measurement to quote.
        #[arg(long)]
        fast: bool,
    },
    /// Instructions of one timed value of pyperformance benchmarks: CPython, ferrojit, and
    /// ferrojit with --disable OPTS; under callgrind (x86-64, valgrind installed), or with
    /// --arch under qemu-user with the counting plugin, for either ISA or both side by side.
    Count {
        /// Optimisations to switch off for a third column (comma-separated knob names).
        #[arg(long)]
        disable: Option<String>,
        /// Count these ISAs under qemu-user with the instruction-counting plugin instead of
        /// callgrind (`x86_64,aarch64`: both, and their ratio).
        #[arg(long, value_enum, value_delimiter = ',')]
        arch: Vec<Arch>,
        /// Write each benchmark's hottest blocks of ferrojit's code (runs, instructions,
        /// function and offset, disassembly) to DIR/<benchmark>-<isa>.txt (needs --arch).
        #[arg(long, value_name = "DIR")]
        hot: Option<std::path::PathBuf>,
        /// Benchmarks, each `NAME` or `NAME:LOOPS` (default: richards).
        benchmarks: Vec<String>,
    },
    /// CPython 3.11's regression suite (`python3 -m test`) plain and with ferrojit compiling
    /// everything (threshold 0), and the test modules that fail only with the JIT (x86-64;
    /// exit status 1 when there is one). Ignores the tests in xtask/regrtest-exclusions.txt.
    Regrtest {
        /// The whole suite.
        #[arg(long)]
        all: bool,
        /// Test modules to run (e.g. test_int test_code) when not --all.
        tests: Vec<String>,
        /// regrtest's worker processes (-j).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
        jobs: u32,
        /// regrtest's timeout for one test module, in seconds.
        #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u32).range(1..))]
        timeout: u32,
        /// Where the logs, scratch directories and summary.json go (default target/regrtest/).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Skip the plain run: report every failure with the JIT.
        #[arg(long)]
        jit_only: bool,
        /// The CPython 3.11 both runs use (default python3), built for separately; e.g.
        /// python3.11d, Debian's debug build (apt-get install python3.11-dbg).
        #[arg(long)]
        python: Option<String>,
        /// regrtest's reference-leak hunt, -R SPEC (e.g. 3:3): needs --python with a debug
        /// build. A test that leaks with the JIT and not plain is a new failure.
        #[arg(long, value_name = "SPEC")]
        huntrleaks: Option<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let result: Result<i32> = match cli.command {
        Command::SetupArm64 => arm64::setup().map(|_| 0),
        Command::Build {
            arch,
            debug,
            python,
        } => match python {
            Some(python) => build::build_for_python(&python),
            None => build::build(arch.unwrap_or_else(Arch::host), !debug),
        }
        .map(|p| {
            println!("{}", p.display());
            0
        }),
        Command::Python { arch, args } => python::run(arch.unwrap_or_else(Arch::host), &args),
        Command::Wheel { arch } => wheel::build(arch.unwrap_or_else(Arch::host)).map(|p| {
            println!("{}", p.display());
            0
        }),
        Command::Test { arch, pytest_args } => test::run(arch, &pytest_args),
        Command::Bench { arch, fast } => {
            bench::run(arch.unwrap_or_else(Arch::host), fast).map(|_| 0)
        }
        Command::Count {
            disable,
            arch,
            hot,
            benchmarks,
        } => count::run(&benchmarks, disable.as_deref(), &arch, hot.as_deref()).map(|_| 0),
        Command::Regrtest {
            all,
            tests,
            jobs,
            timeout,
            out,
            jit_only,
            python,
            huntrleaks,
        } => regrtest::run(&regrtest::Options {
            all,
            tests,
            jobs,
            timeout,
            out,
            jit_only,
            python,
            huntrleaks,
        }),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::exit(1);
        }
    }
}
