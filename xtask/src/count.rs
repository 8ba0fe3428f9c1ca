//! `cargo xtask count`: instructions per timed value of pyperformance benchmarks under
//! valgrind's callgrind, for CPython (ferrojit's `--no-jit`), ferrojit, and ferrojit with
//! optimisations switched off. On a shared VM, time cannot tell apart changes of a few percent
//! (A/A controls have come out at 0.74-0.81x); instruction counts with a fixed hash seed repeat
//! to 0.1% on most benchmarks (about 1% on a few). They are a proxy (no cache or branch
//! costs): the lab's time runs decide.
//!
//! Each cell runs the benchmark's pyperf worker twice in one process each, with one warm-up
//! and one or two timed values (`-w 1 -n 1` and `-n 2`); the difference of the two totals is
//! one value's instructions, with start-up, warm-up and compilation cancelled out. x86-64 only
//! (valgrind does not run the emulated interpreter).

use crate::arch::{repo_root, Arch};
use crate::build;
use crate::python;
use crate::run::capture;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// Loops per value for the benchmarks whose single loop is too short to measure (the rest
/// take 1): the values the figures in the notes used.
const LOOPS: &[(&str, u32)] = &[
    ("deltablue", 8),
    ("deepcopy", 32),
    ("logging", 256),
    ("unpack_sequence", 1024),
    ("coroutines", 2),
    ("comprehensions", 16),
    ("generators", 2),
];

/// One benchmark and its loops per value.
#[derive(Debug, PartialEq)]
pub struct Cell {
    pub name: String,
    pub loops: u32,
}

/// `name` or `name:loops`.
pub fn parse_cell(spec: &str) -> Result<Cell> {
    let (name, loops) = match spec.split_once(':') {
        Some((name, loops)) => (
            name,
            loops
                .parse::<u32>()
                .ok()
                .filter(|&l| l > 0)
                .with_context(|| {
                    format!("bad loop count in {spec:?} (want NAME:LOOPS, LOOPS > 0)")
                })?,
        ),
        None => (
            spec,
            LOOPS
                .iter()
                .find(|(n, _)| *n == spec)
                .map_or(1, |&(_, l)| l),
        ),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("bad benchmark name {name:?}");
    }
    Ok(Cell {
        name: name.to_string(),
        loops,
    })
}

/// The instruction total callgrind prints at exit (`Collected : N`).
pub fn parse_collected(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("Collected :"))
        .filter_map(|(_, n)| n.trim().parse().ok())
        .last()
}

fn benchmark_script(name: &str) -> Result<PathBuf> {
    let code = "import os, pyperformance; print(os.path.join(os.path.dirname(pyperformance.__file__), 'data-files', 'benchmarks'))";
    let dir = PathBuf::from(capture(python::command(Arch::X86_64).args(["-c", code]))?.trim());
    let script = dir.join(format!("bm_{name}")).join("run_benchmark.py");
    if !script.exists() {
        bail!(
            "pyperformance has no benchmark {name:?} (no {})",
            script.display()
        );
    }
    Ok(script)
}

/// The interpreter itself (`python3` may be a launcher script, such as pyenv's shim, which
/// callgrind would count instead).
fn interpreter() -> Result<PathBuf> {
    let code = "import sys; print(sys.executable)";
    Ok(PathBuf::from(
        capture(python::command(Arch::X86_64).args(["-c", code]))?.trim(),
    ))
}

/// Instructions of one worker run with `values` timed values.
fn total(
    cell: &Cell,
    python: &PathBuf,
    script: &PathBuf,
    options: &[String],
    values: u32,
) -> Result<u64> {
    let out = repo_root().join("target/count");
    std::fs::create_dir_all(&out)?;
    let json = out.join("values.json");
    let _ = std::fs::remove_file(&json);
    let env = python::command(Arch::X86_64);
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(python)
        .args(["-m", "ferrojit", "run"])
        .args(options)
        .arg(script)
        .args(["--worker", "-w", "1", "-p", "1", "-l"])
        .arg(cell.loops.to_string())
        .arg("-n")
        .arg(values.to_string())
        .arg("-o")
        .arg(&json)
        .env("PYTHONHASHSEED", "0");
    for (k, v) in env.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let output = cmd
        .output()
        .context("running valgrind (is it installed? apt-get install valgrind)")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "{} exited with {}: {}",
            cell.name,
            output.status,
            stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        );
    }
    parse_collected(&stderr).with_context(|| format!("no callgrind total for {}", cell.name))
}

/// One value's instructions, in millions.
fn per_value(cell: &Cell, python: &PathBuf, script: &PathBuf, options: &[String]) -> Result<f64> {
    let one = total(cell, python, script, options, 1)?;
    let two = total(cell, python, script, options, 2)?;
    Ok(two.saturating_sub(one) as f64 / 1e6)
}

pub fn run(specs: &[String], disable: Option<&str>) -> Result<()> {
    if Arch::host() != Arch::X86_64 {
        bail!("`count` runs valgrind on the host's x86-64 CPython only");
    }
    python::check_host_python()?;
    let cells = if specs.is_empty() {
        vec![parse_cell("richards")?]
    } else {
        specs.iter().map(|s| parse_cell(s)).collect::<Result<_>>()?
    };
    build::build(Arch::X86_64, true)?;
    let python = interpreter()?;
    let mut configs: Vec<(&str, Vec<String>)> =
        vec![("CPython", vec!["--no-jit".into()]), ("ferrojit", vec![])];
    if let Some(opts) = disable {
        configs.push(("knobs off", vec!["--disable".into(), opts.into()]));
    }
    print!("{:<18}", "benchmark (loops)");
    for (label, _) in &configs {
        print!(" {label:>12}");
    }
    println!(
        "  CPython/ferrojit{}",
        if disable.is_some() {
            "  off/ferrojit"
        } else {
            ""
        }
    );
    let mut ratios = Vec::new();
    for cell in &cells {
        let script = benchmark_script(&cell.name)?;
        let mut counts = Vec::new();
        for (label, options) in &configs {
            eprintln!("xtask: {} ({}): {label}", cell.name, cell.loops);
            counts.push(per_value(cell, &python, &script, options)?);
        }
        print!("{:<18}", format!("{} ({})", cell.name, cell.loops));
        for c in &counts {
            print!(" {c:>11.1}M");
        }
        let ratio = counts[0] / counts[1];
        ratios.push(ratio);
        print!("  {ratio:>16.3}");
        if counts.len() > 2 {
            print!("  {:>13.3}", counts[2] / counts[1]);
        }
        println!();
    }
    if ratios.len() > 1 {
        let geomean = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
        println!(
            "geometric mean of CPython/ferrojit over {}: {geomean:.3}",
            ratios.len()
        );
    }
    println!("(instructions of one timed value, millions; callgrind, PYTHONHASHSEED=0)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_take_loops_from_the_spec_or_the_table() {
        assert_eq!(
            parse_cell("go").unwrap(),
            Cell {
                name: "go".into(),
                loops: 1
            }
        );
        assert_eq!(parse_cell("deepcopy").unwrap().loops, 32);
        assert_eq!(parse_cell("deepcopy:4").unwrap().loops, 4);
        assert!(parse_cell("go:0").is_err());
        assert!(parse_cell("go:x").is_err());
        assert!(parse_cell("../go").is_err());
    }

    #[test]
    fn the_callgrind_total_is_read_from_its_summary() {
        let stderr = "==1== Events    : Ir\n==1== Collected : 6029274809\n==1==\n==1== I   refs:      6,029,274,809\n";
        assert_eq!(parse_collected(stderr), Some(6_029_274_809));
        assert_eq!(parse_collected("no summary"), None);
    }
}
