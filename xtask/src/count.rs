//! `cargo xtask count`: instructions per timed value of pyperformance benchmarks under
//! valgrind's callgrind, for CPython (ferrojit's `--no-jit`), ferrojit, and ferrojit with
//! optimisations switched off. On a shared VM, time cannot tell apart changes of a few percent
//! (A/A controls have come out at 0.74-0.81x); instruction counts with a fixed hash seed repeat
//! to 0.1% on most benchmarks (about 1% on a few). They are a proxy (no cache or branch
//! costs): the lab's time runs decide.
//!
//! Each cell runs the benchmark's pyperf worker twice in one process each, with one warm-up
//! and one or two timed values (`-w 1 -n 1` and `-n 2`); the difference of the two totals is
//! one value's instructions, with start-up, warm-up and compilation cancelled out.
//!
//! `--arch x86_64,aarch64` counts with the qemu-user plugin of `crates/qemu-insn-count`
//! instead (valgrind does not run the emulated interpreter): each listed ISA's CPython runs
//! under `qemu-<isa>` with the plugin, so both ISAs are counted by one tool on one host, and the
//! instructions executed in ferrojit's generated code are counted apart (ferrojit lists its
//! code in a perf map that the plugin reads at exit). With both ISAs the table ends with the
//! campaign's question in counts: AArch64 / x86-64, all instructions and generated code.

use crate::arch::{repo_root, Arch};
use crate::arm64;
use crate::build;
use crate::python;
use crate::run::capture;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Loops per value for the benchmarks whose single loop is too short to measure (the rest
/// take 1): the values the figures in the notes used.
const LOOPS: &[(&str, u32)] = &[
    ("deltablue", 8),
    ("deepcopy", 32),
    ("logging", 256),
    ("unpack_sequence", 1024),
    ("coroutines", 2),
    ("comprehensions", 512),
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

/// What counts the instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// valgrind's callgrind on the host's x86-64 CPython.
    Callgrind,
    /// The qemu-user plugin on that ISA's CPython.
    Qemu(Arch),
}

impl Counter {
    fn label(self) -> &'static str {
        match self {
            Counter::Callgrind => "x86_64 (callgrind)",
            Counter::Qemu(Arch::X86_64) => "x86_64 (qemu)",
            Counter::Qemu(Arch::Aarch64) => "aarch64 (qemu)",
        }
    }
}

/// Instructions of one run: all, and (qemu only) those in generated code.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub all: f64,
    pub generated: Option<f64>,
}

impl Totals {
    fn minus(self, other: Totals) -> Totals {
        Totals {
            all: (self.all - other.all).max(0.0),
            generated: self
                .generated
                .zip(other.generated)
                .map(|(a, b)| (a - b).max(0.0)),
        }
    }
}

/// The instruction total callgrind prints at exit (`Collected : N`).
pub fn parse_collected(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("Collected :"))
        .filter_map(|(_, n)| n.trim().parse().ok())
        .next_back()
}

/// The totals the qemu plugin wrote (`{"instructions": N, "generated_instructions": M, ...}`).
pub fn parse_plugin_json(text: &str) -> Result<Totals> {
    let v: serde_json::Value = serde_json::from_str(text).context("the plugin's JSON")?;
    let all = v["instructions"]
        .as_u64()
        .context("no \"instructions\" in the plugin's JSON")?;
    Ok(Totals {
        all: all as f64,
        generated: v["generated_instructions"].as_u64().map(|g| g as f64),
    })
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
/// callgrind or qemu would count instead).
fn interpreter(counter: Counter) -> Result<PathBuf> {
    if counter == Counter::Qemu(Arch::Aarch64) {
        return Ok(arm64::python());
    }
    let code = "import sys; print(sys.executable)";
    Ok(PathBuf::from(
        capture(python::command(Arch::X86_64).args(["-c", code]))?.trim(),
    ))
}

/// The qemu plugin, built for the host.
fn plugin() -> Result<PathBuf> {
    let status = Command::new("cargo")
        .args(["build", "-q", "--release", "-p", "ferrojit-qemu-insn-count"])
        .current_dir(repo_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("building the qemu plugin failed");
    }
    Ok(repo_root().join("target/release/libferrojit_qemu_insn_count.so"))
}

/// The command that runs `python` under `counter`, with the ISA's environment.
fn counted(run: &Counting, json: &Path, hot: Option<&Path>) -> Command {
    let (counter, python, plugin) = (run.counter, &run.python, run.plugin);
    let (mut cmd, env) = match counter {
        Counter::Callgrind => {
            let mut cmd = Command::new("valgrind");
            cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"]);
            (cmd, python::command(Arch::X86_64))
        }
        Counter::Qemu(arch) => {
            let mut cmd = Command::new(format!("qemu-{}", arch.name()));
            let plugin = plugin.expect("built for qemu counts");
            let mut args = format!(
                "{},out={},perf_map=consume",
                plugin.display(),
                json.with_extension("counts.json").display()
            );
            if let Some(hot) = hot {
                args.push_str(&format!(",hot={}", hot.display()));
            }
            cmd.arg("-plugin").arg(args);
            cmd.env("FERROJIT_PERF_MAP", "1");
            (cmd, python::command(arch))
        }
    };
    cmd.arg(python);
    for (k, v) in env.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd
}

/// How one ISA's runs are counted.
struct Counting<'a> {
    counter: Counter,
    /// The interpreter itself.
    python: PathBuf,
    plugin: Option<&'a PathBuf>,
    /// Where the plugin writes each benchmark's hottest blocks of generated code (`--hot`).
    hot: Option<&'a Path>,
}

/// Instructions of one worker run with `values` timed values; `hot`: the file for the
/// plugin's hottest blocks.
fn total(
    run: &Counting,
    cell: &Cell,
    script: &PathBuf,
    options: &[String],
    values: u32,
    hot: Option<&Path>,
) -> Result<Totals> {
    let counter = run.counter;
    let out = repo_root().join("target/count");
    std::fs::create_dir_all(&out)?;
    let json = out.join("values.json");
    let counts = json.with_extension("counts.json");
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&counts);
    let mut cmd = counted(run, &json, hot);
    cmd.args(["-m", "ferrojit", "run"])
        .args(options)
        .arg(script)
        .args(["--worker", "-w", "1", "-p", "1", "-l"])
        .arg(cell.loops.to_string())
        .arg("-n")
        .arg(values.to_string())
        .arg("-o")
        .arg(&json)
        .env("PYTHONHASHSEED", "0");
    let output = cmd.output().with_context(|| {
        format!(
            "running {:?} (valgrind: apt-get install valgrind; qemu: cargo xtask setup-arm64)",
            cmd.get_program()
        )
    })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "{} exited with {}: {}",
            cell.name,
            output.status,
            stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        );
    }
    match counter {
        Counter::Callgrind => parse_collected(&stderr)
            .map(|n| Totals {
                all: n as f64,
                generated: None,
            })
            .with_context(|| format!("no callgrind total for {}", cell.name)),
        Counter::Qemu(_) => {
            let text = std::fs::read_to_string(&counts).with_context(|| {
                format!(
                    "the qemu plugin wrote no counts for {} ({})",
                    cell.name,
                    counts.display()
                )
            })?;
            parse_plugin_json(&text)
        }
    }
}

/// One value's instructions, in millions; with `--hot`, ferrojit's hottest blocks of the run
/// with two values go to `DIR/<benchmark>-<isa>[-knobs-off].txt`.
fn per_value(run: &Counting, cell: &Cell, script: &PathBuf, options: &[String]) -> Result<Totals> {
    let hot = match (run.hot, run.counter) {
        (Some(dir), Counter::Qemu(arch)) if !options.iter().any(|o| o == "--no-jit") => {
            let knobs = if options.is_empty() { "" } else { "-knobs-off" };
            Some(dir.join(format!("{}-{}{knobs}.txt", cell.name, arch.name())))
        }
        _ => None,
    };
    let one = total(run, cell, script, options, 1, None)?;
    let two = total(run, cell, script, options, 2, hot.as_deref())?;
    let d = two.minus(one);
    Ok(Totals {
        all: d.all / 1e6,
        generated: d.generated.map(|g| g / 1e6),
    })
}

fn geomean(ratios: &[f64]) -> f64 {
    (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp()
}

pub fn run(
    specs: &[String],
    disable: Option<&str>,
    arches: &[Arch],
    hot: Option<&Path>,
) -> Result<()> {
    if let Some(dir) = hot {
        if arches.is_empty() {
            bail!("--hot needs --arch (the qemu plugin writes the hot blocks)");
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    python::check_host_python()?;
    let counters: Vec<Counter> = if arches.is_empty() {
        if Arch::host() != Arch::X86_64 {
            bail!("`count` without --arch runs valgrind on the host's x86-64 CPython only");
        }
        vec![Counter::Callgrind]
    } else {
        let mut a = arches.to_vec();
        a.dedup();
        a.into_iter().map(Counter::Qemu).collect()
    };
    let cells = if specs.is_empty() {
        vec![parse_cell("richards")?]
    } else {
        specs.iter().map(|s| parse_cell(s)).collect::<Result<_>>()?
    };
    let plugin = if counters.iter().any(|c| matches!(c, Counter::Qemu(_))) {
        Some(plugin()?)
    } else {
        None
    };
    for c in &counters {
        let arch = match c {
            Counter::Callgrind => Arch::X86_64,
            Counter::Qemu(a) => *a,
        };
        if arch == Arch::Aarch64 && !arm64::ready() {
            bail!("no arm64 CPython: run `cargo xtask setup-arm64` first");
        }
        build::build(arch, true)?;
    }
    let mut configs: Vec<(&str, Vec<String>)> =
        vec![("CPython", vec!["--no-jit".into()]), ("ferrojit", vec![])];
    if let Some(opts) = disable {
        configs.push(("knobs off", vec!["--disable".into(), opts.into()]));
    }
    // rows[counter][cell] = per-config totals
    let mut rows: Vec<Vec<Vec<Totals>>> = Vec::new();
    for &counter in &counters {
        let run = Counting {
            counter,
            python: interpreter(counter)?,
            plugin: plugin.as_ref(),
            hot,
        };
        let mut per_cell = Vec::new();
        for cell in &cells {
            let script = benchmark_script(&cell.name)?;
            let mut counts = Vec::new();
            for (label, options) in &configs {
                eprintln!(
                    "xtask: {} ({}): {label}, {}",
                    cell.name,
                    cell.loops,
                    counter.label()
                );
                counts.push(per_value(&run, cell, &script, options)?);
            }
            per_cell.push(counts);
        }
        rows.push(per_cell);
    }
    for (counter, per_cell) in counters.iter().zip(&rows) {
        print_table(*counter, &cells, &configs, per_cell, disable.is_some());
    }
    if counters.len() == 2 {
        print_isa_ratio(&cells, &rows[1], &rows[0]);
    }
    Ok(())
}

fn print_table(
    counter: Counter,
    cells: &[Cell],
    configs: &[(&str, Vec<String>)],
    per_cell: &[Vec<Totals>],
    with_off: bool,
) {
    println!("\n{}", counter.label());
    print!("{:<22}", "benchmark (loops)");
    for (label, _) in configs {
        print!(" {label:>12}");
    }
    let qemu = matches!(counter, Counter::Qemu(_));
    if qemu {
        print!(" {:>12}", "generated");
    }
    println!(
        "  CPython/ferrojit{}",
        if with_off { "  off/ferrojit" } else { "" }
    );
    let mut ratios = Vec::new();
    for (cell, counts) in cells.iter().zip(per_cell) {
        print!("{:<22}", format!("{} ({})", cell.name, cell.loops));
        for c in counts {
            print!(" {:>11.1}M", c.all);
        }
        if qemu {
            print!(" {:>11.1}M", counts[1].generated.unwrap_or(0.0));
        }
        let ratio = counts[0].all / counts[1].all;
        ratios.push(ratio);
        print!("  {ratio:>16.3}");
        if counts.len() > 2 {
            print!("  {:>13.3}", counts[2].all / counts[1].all);
        }
        println!();
    }
    if ratios.len() > 1 {
        println!(
            "geometric mean of CPython/ferrojit over {}: {:.3}",
            ratios.len(),
            geomean(&ratios)
        );
    }
    let how = if qemu {
        "the qemu-user plugin; generated: in ferrojit's code"
    } else {
        "callgrind"
    };
    println!("(instructions of one timed value, millions; {how}; PYTHONHASHSEED=0)");
}

/// AArch64 / x86-64 per benchmark: ferrojit's instructions, its generated code's, CPython's.
fn print_isa_ratio(cells: &[Cell], arm: &[Vec<Totals>], x86: &[Vec<Totals>]) {
    println!("\naarch64 / x86_64 (one timed value; below 1: fewer on aarch64)");
    println!(
        "{:<22} {:>10} {:>10} {:>10}",
        "benchmark", "CPython", "ferrojit", "generated"
    );
    let (mut c, mut f, mut g) = (Vec::new(), Vec::new(), Vec::new());
    for ((cell, a), x) in cells.iter().zip(arm).zip(x86) {
        let cpy = a[0].all / x[0].all;
        let jit = a[1].all / x[1].all;
        let gen = a[1].generated.unwrap_or(0.0) / x[1].generated.unwrap_or(f64::NAN);
        println!("{:<22} {cpy:>10.3} {jit:>10.3} {gen:>10.3}", cell.name);
        c.push(cpy);
        f.push(jit);
        if gen.is_finite() && gen > 0.0 {
            g.push(gen);
        }
    }
    if cells.len() > 1 {
        let gg = if g.is_empty() { f64::NAN } else { geomean(&g) };
        println!(
            "{:<22} {:>10.3} {:>10.3} {gg:>10.3}",
            "geometric mean",
            geomean(&c),
            geomean(&f)
        );
    }
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
    fn the_plugin_json_gives_all_and_generated_instructions() {
        let t = parse_plugin_json(r#"{"instructions": 1000, "translated_blocks": 5, "generated_instructions": 250, "generated_ranges": 2}"#).unwrap();
        assert_eq!(
            t,
            Totals {
                all: 1000.0,
                generated: Some(250.0)
            }
        );
        let t = parse_plugin_json(r#"{"instructions": 7, "translated_blocks": 1}"#).unwrap();
        assert_eq!(t.generated, None);
        assert!(parse_plugin_json("{}").is_err());
        assert!(parse_plugin_json("not json").is_err());
    }

    #[test]
    fn one_value_is_the_difference_of_two_runs_never_negative() {
        let one = Totals {
            all: 100.0,
            generated: Some(10.0),
        };
        let two = Totals {
            all: 150.0,
            generated: Some(30.0),
        };
        assert_eq!(
            two.minus(one),
            Totals {
                all: 50.0,
                generated: Some(20.0)
            }
        );
        assert_eq!(one.minus(two).all, 0.0);
        assert_eq!(
            two.minus(Totals {
                all: 1.0,
                generated: None
            })
            .generated,
            None
        );
    }

    #[test]
    fn the_callgrind_total_is_read_from_its_summary() {
        let stderr = "==1== Events    : Ir\n==1== Collected : 6029274809\n==1==\n==1== I   refs:      6,029,274,809\n";
        assert_eq!(parse_collected(stderr), Some(6_029_274_809));
        assert_eq!(parse_collected("no summary"), None);
    }
}
