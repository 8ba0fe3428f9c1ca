//! `cargo xtask bench`: pyperformance's unmodified richards through pyperf, once with the JIT
//! off and once on, with the same pinned protocol, in pyperf's own worker processes; prints both
//! means and the speed-up (no-JIT mean / JIT mean), and what the JIT compiled. Under qemu the
//! figure is a rough relative one and says so. For statistics across hosts use ferrojit-lab.

use crate::arch::{repo_root, Arch};
use crate::arm64;
use crate::build;
use crate::python;
use crate::run::{capture, check};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Makes sure that ISA's interpreter can import pyperf and pyperformance.
fn ensure_harness(arch: Arch) -> Result<()> {
    if arch.emulated() {
        return arm64::setup();
    }
    python::check_host_python()?;
    crate::wheel::ensure_host_packages(
        "pyperf, pyperformance",
        &["pyperf==2.10.0", "pyperformance==1.14.0"],
    )?;
    Ok(())
}

fn richards_script(arch: Arch) -> Result<PathBuf> {
    let code = "import os, pyperformance; print(os.path.join(os.path.dirname(pyperformance.__file__), 'data-files', 'benchmarks', 'bm_richards', 'run_benchmark.py'))";
    let out = capture(python::command(arch).args(["-c", code]))?;
    Ok(PathBuf::from(out.trim()))
}

/// Mean, standard deviation and count of every value (warm-ups excluded) in a pyperf JSON file.
fn summarise(path: &Path) -> Result<(f64, f64, usize)> {
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    let mut values = Vec::new();
    for bench in json["benchmarks"]
        .as_array()
        .context("no benchmarks in pyperf output")?
    {
        for run in bench["runs"].as_array().into_iter().flatten() {
            values.extend(
                run["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_f64()),
            );
        }
    }
    if values.is_empty() {
        bail!("{} holds no values", path.display());
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Ok((mean, var.sqrt(), values.len()))
}

pub fn run(arch: Arch, fast: bool) -> Result<()> {
    ensure_harness(arch)?;
    build::build(arch, true)?;
    let script = richards_script(arch)?;
    let out = repo_root().join("target/bench").join(arch.name());
    std::fs::create_dir_all(&out)?;
    let protocol: &[&str] = match (arch.emulated(), fast) {
        (true, _) => &["-p", "3", "-n", "2", "-w", "1", "-l", "1"],
        (false, true) => &["-p", "3", "-n", "3", "-w", "1"],
        (false, false) => &["-p", "10", "-n", "5", "-w", "2"],
    };
    let mut inherit = String::from("FERROJIT,FERROJIT_THRESHOLD,FERROJIT_STATS");
    if arch.emulated() {
        inherit.push_str(",QEMU_LD_PREFIX");
    }
    let mut results = Vec::new();
    for (label, jit) in [("nojit", false), ("jit", true)] {
        let json = out.join(format!("{label}.json"));
        let stats = out.join(format!("{label}-stats.jsonl"));
        let _ = std::fs::remove_file(&json);
        let _ = std::fs::remove_file(&stats);
        let mut cmd = python::command(arch);
        cmd.args(["-m", "ferrojit", "run", "--stats"]).arg(&stats);
        if !jit {
            cmd.arg("--no-jit");
        }
        cmd.arg(&script)
            .args(protocol)
            .args(["--inherit-environ", &inherit, "--quiet", "-o"])
            .arg(&json);
        eprintln!(
            "xtask: richards on {} with the JIT {}",
            arch.name(),
            if jit { "on" } else { "off" }
        );
        check(&mut cmd)?;
        results.push((summarise(&json)?, stats));
    }
    let ((base, base_sd, n), _) = &results[0];
    let ((jit, jit_sd, _), stats) = &results[1];
    println!(
        "richards on {}{} (pyperf {}, {n} values each)",
        arch.name(),
        if arch.emulated() { " under qemu" } else { "" },
        protocol.join(" ")
    );
    println!(
        "  without the JIT: {:8.2} ms +- {:.2} ms",
        base * 1e3,
        base_sd * 1e3
    );
    println!(
        "  with the JIT:    {:8.2} ms +- {:.2} ms",
        jit * 1e3,
        jit_sd * 1e3
    );
    println!(
        "  speed-up: {:.3}x{}",
        base / jit,
        if arch.emulated() {
            "  (emulated: relative figure only)"
        } else {
            ""
        }
    );
    print_stats(stats)?;
    Ok(())
}

/// What the JIT did in pyperf's worker processes (the parent only imports the benchmark).
fn print_stats(path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let worker = lines
        .iter()
        .max_by_key(|s| s["native_calls"].as_u64().unwrap_or(0));
    match worker {
        Some(s) => println!(
            "  per worker: {} functions compiled, {} code bytes, {} instructions, {} native calls, deopts {}",
            s["functions_compiled"], s["code_bytes"], s["code_instructions"], s["native_calls"], s["deopts"]
        ),
        None => println!("  no JIT statistics were written"),
    }
    Ok(())
}
