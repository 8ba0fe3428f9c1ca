//! ferrojit-lab: one command that measures Python runtimes on the same benchmarks across hosts
//! of different architectures, and decides A/B questions with statistics.
//!
//! - `check`: reach every host, show what it is, the state that affects timing, and which
//!   runtimes are set up;
//! - `bootstrap`: create or repair every runtime's environment on every host;
//! - `run`: the whole matrix (set-up included), then the report; `--resume DIR` finishes a run;
//! - `report DIR`: summary JSON, markdown on stdout, HTML page;
//! - `compare DIR_A DIR_B`: before/after, cell by cell.
//!
//! Without `--config`, the built-in default: richards with CPython 3.11 and ferrojit on this
//! machine, and on the emulated arm64 host when `cargo xtask setup-arm64` has set it up.

mod compare;
mod config;
mod counts;
mod host;
mod html;
mod matrix;
mod report;
mod run;
mod runtime;
mod session;
mod stats;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use config::{Config, RuntimeKind};
use session::Session;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "ferrojit-lab",
    about = "Measure Python runtimes across ARM and x86 hosts and decide A/B questions"
)]
struct Cli {
    /// The lab configuration (TOML; see docs/LAB.md). Without it: the built-in default.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Reach every host and report what it is and what set-up is missing.
    Check,
    /// Create or repair each runtime's environment on each host (idempotent).
    Bootstrap,
    /// Run the whole matrix, then report.
    Run {
        /// Where the run's folder goes (default: lab-results/<timestamp>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Finish an interrupted run: only rounds without results run (its own configuration is used).
        #[arg(long, conflicts_with = "out")]
        resume: Option<PathBuf>,
        /// Twice the processes, and workers pinned to one CPU.
        #[arg(long)]
        rigorous: bool,
        /// Override the number of processes per cell.
        #[arg(long)]
        processes: Option<u32>,
        /// Override the number of values per process.
        #[arg(long)]
        values: Option<u32>,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Summarise a run folder: summary JSON, markdown table, HTML page.
    Report { dir: PathBuf },
    /// Before/after a change: DIR_A is before, DIR_B after.
    Compare { before: PathBuf, after: PathBuf },
}

fn main() {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("ferrojit-lab: error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn load_config(path: &Option<PathBuf>) -> Result<Config> {
    match path {
        Some(p) => Config::load(p),
        None => {
            let mut c = Config::builtin(session::emulated_ready());
            let py = session::local_python()?;
            for rt in c.runtimes.values_mut() {
                if matches!(rt.kind, RuntimeKind::Cpython | RuntimeKind::Ferrojit) {
                    rt.python = Some(py.display().to_string());
                }
            }
            Ok(c)
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Cmd::Check => check(&load_config(&cli.config)?),
        Cmd::Bootstrap => bootstrap(&load_config(&cli.config)?),
        Cmd::Run {
            out,
            resume,
            rigorous,
            processes,
            values,
            quiet,
        } => {
            let (config, dir) = match resume {
                Some(dir) => (matrix::Manifest::load(&dir)?.config, dir),
                None => {
                    let mut c = load_config(&cli.config)?;
                    c.settings.rigorous |= rigorous;
                    if let Some(p) = processes {
                        c.settings.processes = p;
                        c.settings.rounds = c.settings.rounds.map(|r| r.min(p));
                    }
                    if let Some(v) = values {
                        c.settings.values = v;
                    }
                    let dir = out.unwrap_or_else(|| {
                        PathBuf::from("lab-results")
                            .join(chrono::Local::now().format("%Y%m%d-%H%M%S").to_string())
                    });
                    if matrix::Manifest::path(&dir).exists() {
                        bail!("{} already holds a run; use --resume {} to finish it, or another --out", dir.display(), dir.display());
                    }
                    (c, dir)
                }
            };
            run_and_report(config, &dir, !quiet)
        }
        Cmd::Report { dir } => {
            let s = report::summarize(&dir)?;
            let (json, html) = report::write(&s, &dir)?;
            print!("{}", report::markdown(&s));
            eprintln!("lab: wrote {} and {}", json.display(), html.display());
            Ok(0)
        }
        Cmd::Compare { before, after } => {
            let c = compare::compare(&before, &after)?;
            let confidence = matrix::Manifest::load(&after)?.config.settings.confidence;
            print!("{}", compare::markdown(&c, confidence));
            let name = before
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "before".into());
            let path = after.join(format!("compare_with_{name}.json"));
            matrix::write_atomic(&path, &serde_json::to_string_pretty(&c)?)?;
            eprintln!("lab: wrote {}", path.display());
            Ok(0)
        }
    }
}

fn check(config: &Config) -> Result<i32> {
    let session = Session::open(config.clone())?;
    let mut problems = 0;
    for (name, r) in &session.hosts {
        println!(
            "host {name} ({})",
            session::describe_host(&config.hosts[name])
        );
        match &r.probe {
            Err(e) => {
                problems += 1;
                println!("  unreachable: {e:#}");
                continue;
            }
            Ok(p) => {
                println!(
                    "  {} {}, {} cores, {}, {}",
                    p.arch,
                    p.cpu.trim(),
                    p.cores,
                    p.os,
                    p.kernel
                );
                println!(
                    "  governor {}, turbo {}, isolated CPUs {:?}, load {}, ASLR {}",
                    p.governor, p.turbo, p.isolated, p.load, p.aslr
                );
                if let Some(e) = &p.emulator {
                    println!("  emulated by {e}");
                }
                for w in p.warnings() {
                    println!("  warning: {w}");
                }
            }
        }
        for rt in session.runtimes_on(name) {
            match session.check_runtime(name, &rt) {
                Ok((facts, missing)) => {
                    let f: Vec<String> = facts.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    println!(
                        "  runtime {rt}: {}",
                        if f.is_empty() {
                            "not found".into()
                        } else {
                            f.join(", ")
                        }
                    );
                    for m in &missing {
                        problems += 1;
                        println!("    missing: {m} (run `ferrojit-lab bootstrap`)");
                    }
                }
                Err(e) => {
                    problems += 1;
                    println!("  runtime {rt}: {e:#}");
                }
            }
        }
    }
    Ok(if problems == 0 { 0 } else { 1 })
}

fn bootstrap(config: &Config) -> Result<i32> {
    let session = Session::open(config.clone())?;
    let mut failed = 0;
    for (name, r) in &session.hosts {
        if let Err(e) = &r.probe {
            failed += 1;
            eprintln!("lab: host {name}: unreachable: {e:#}");
            continue;
        }
        for rt in session.runtimes_on(name) {
            match session.bootstrap_runtime(name, &rt) {
                Ok(()) => eprintln!("lab: {rt} on {name}: ready"),
                Err(e) => {
                    failed += 1;
                    eprintln!("lab: {rt} on {name}: {e:#}");
                }
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn run_and_report(config: Config, dir: &Path, progress: bool) -> Result<i32> {
    let resumed = matrix::Manifest::path(dir).exists();
    let previous = if resumed {
        Some(matrix::Manifest::load(dir)?)
    } else {
        None
    };
    let session = Session::open(config)?;
    let manifest = run::write_manifest(&session, dir).context("writing the manifest")?;
    if let Some(prev) = previous {
        // Keep what an earlier attempt learnt about hosts that cannot be reached now.
        let mut m = manifest;
        for (h, rec) in prev.hosts {
            if m.hosts.get(&h).map(|r| r.probe.is_none()).unwrap_or(true) && rec.probe.is_some() {
                m.hosts.insert(h, rec);
            }
        }
        m.created = prev.created;
        m.save(dir)?;
    }
    eprintln!(
        "lab: {} {}",
        if resumed { "resuming" } else { "running into" },
        dir.display()
    );
    let outcome = run::run(&session, dir, progress)?;
    drop(session);
    let s = report::summarize(dir)?;
    let (json, html) = report::write(&s, dir)?;
    print!("{}", report::markdown(&s));
    eprintln!(
        "lab: {} rounds run; wrote {} and {}",
        outcome.rounds_run,
        json.display(),
        html.display()
    );
    if !outcome.failed_cells.is_empty() {
        eprintln!("lab: {} cells did not finish; what finished is kept. Finish with: ferrojit-lab run --resume {}", outcome.failed_cells.len(), dir.display());
        for (cell, why) in &outcome.failed_cells {
            eprintln!("  {cell}: {}", host::tail(why, 300));
        }
        return Ok(1);
    }
    Ok(0)
}
