//! Executed-instruction counts of a cell (setting `count_instructions`): what a benchmark's loop
//! costs in instructions on a host's ISA, the measure that stays meaningful under emulation.
//!
//! A cell is counted by two pyperf worker runs with the cell's pinned loops and warm-ups, one
//! timed value and two, each under qemu-user with ferrojit's plugin (`crates/qemu-insn-count`):
//! the emulated arm64 host through its binfmt `qemu-aarch64`, a local x86-64 host by running its
//! interpreter under `qemu-x86_64`. The difference of the two totals is one timed value: start-up,
//! imports, warm-ups and compilation before it cancel out. Divided by the loops it is one
//! iteration of the benchmark. ferrojit's own code is counted apart (its perf map names it).

use crate::config::{RuntimeKind, Target};
use crate::host::{tail, Host, HostKind};
use crate::matrix::{write_atomic, Cell};
use crate::runtime::{repo_root, shell_words, Recipe};
use crate::stats::Verdict;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One cell's counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CellCounts {
    /// Loops per value (the pinned loops).
    pub loops: u64,
    /// Instructions of one timed value, the whole process.
    pub per_value: u64,
    /// Of those, the instructions in ferrojit's generated code (absent for other runtimes).
    pub generated_per_value: Option<u64>,
    /// What counted them, e.g. "qemu-aarch64 + ferrojit's plugin".
    pub counter: String,
}

impl CellCounts {
    /// Instructions of one iteration of the benchmark's loop.
    pub fn per_loop(&self) -> f64 {
        self.per_value as f64 / self.loops.max(1) as f64
    }

    pub fn generated_per_loop(&self) -> Option<f64> {
        (self.generated_per_value).map(|g| g as f64 / self.loops.max(1) as f64)
    }
}

/// What counting a cell left: its counts, or why there are none.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Counted(CellCounts),
    Error(String),
}

pub fn file(cell: &Cell, run: &Path) -> PathBuf {
    cell.dir(run).join("counts.json")
}

/// The counts of a cell in a run folder (None: never counted).
pub fn load(cell: &Cell, run: &Path) -> Option<Outcome> {
    let text = std::fs::read_to_string(file(cell, run)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn save(cell: &Cell, run: &Path, outcome: &Outcome) -> Result<()> {
    std::fs::create_dir_all(cell.dir(run))?;
    write_atomic(&file(cell, run), &serde_json::to_string_pretty(outcome)?)
}

/// The totals the plugin writes at exit.
#[derive(Debug, Deserialize)]
struct PluginTotals {
    instructions: u64,
    generated_instructions: Option<u64>,
}

fn parse_totals(text: &str) -> Result<PluginTotals> {
    serde_json::from_str(text).context("reading the qemu plugin's totals")
}

/// One value's counts from the totals of a run with one timed value and one with two.
fn one_value(one: &PluginTotals, two: &PluginTotals) -> (u64, Option<u64>) {
    let generated = match (one.generated_instructions, two.generated_instructions) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    (two.instructions.saturating_sub(one.instructions), generated)
}

/// How a host's interpreter runs under qemu with the plugin: the command prefix and the
/// counter's name. Only this machine's hosts can be counted (the plugin is built here).
fn counter(host: &Host, arch: &str) -> Result<(&'static str, &'static str)> {
    match (&host.kind, arch) {
        (HostKind::Emulated { .. }, _) => Ok(("", "qemu-aarch64 (binfmt) + ferrojit's plugin")),
        (HostKind::Local, "x86_64") => Ok(("qemu-x86_64 ", "qemu-x86_64 + ferrojit's plugin")),
        (HostKind::Local, other) => {
            bail!("instruction counts on a local {other} host are not supported (x86-64 only)")
        }
        (HostKind::Ssh { .. }, _) => bail!(
            "instruction counts need qemu and ferrojit's plugin on the host: only the local and \
             emulated hosts are counted"
        ),
    }
}

/// The plugin, built for this machine (a quick no-op when it is up to date).
pub fn plugin() -> Result<PathBuf> {
    let st = Command::new("cargo")
        .args(["build", "-q", "--release", "-p", "ferrojit-qemu-insn-count"])
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .status()
        .context("running cargo to build the qemu plugin")?;
    let path = repo_root().join("target/release/libferrojit_qemu_insn_count.so");
    if !st.success() || !path.exists() {
        bail!(
            "could not build the qemu plugin (cargo build --release -p ferrojit-qemu-insn-count)"
        );
    }
    Ok(path)
}

/// What one counted worker run needs.
pub struct Job<'a> {
    pub host: &'a Host,
    pub arch: &'a str,
    pub cell: &'a Cell,
    pub recipe: &'a Recipe,
    pub script: &'a str,
    pub loops: u64,
    pub warmups: u32,
    pub plugin: &'a Path,
    pub tag: &'a str,
}

/// Counts one cell: two worker runs, one timed value apart.
pub fn count(job: &Job) -> Result<CellCounts> {
    let (prefix, name) = counter(job.host, job.arch)?;
    let one = run_worker(job, prefix, 1)?;
    let two = run_worker(job, prefix, 2)?;
    let (per_value, generated_per_value) = one_value(&one, &two);
    Ok(CellCounts {
        loops: job.loops,
        per_value,
        generated_per_value,
        counter: name.to_string(),
    })
}

fn run_worker(job: &Job, prefix: &str, values: u32) -> Result<PluginTotals> {
    let h = job.host;
    let scratch = format!("{}/runs", h.workdir);
    let out = format!("{scratch}/{}.count-{values}.json", job.tag);
    let totals = format!("{scratch}/{}.count-{values}.totals.json", job.tag);
    let mut env = job.recipe.env.clone();
    env.extend(job.cell.knobs.clone());
    let exports: String = env
        .iter()
        .map(|(k, v)| format!("export {k}=\"{v}\"\n"))
        .collect();
    // ferrojit names its code in a perf map, which the plugin reads (and removes) at exit.
    let (perf_map, map_option) = match job.recipe.kind {
        RuntimeKind::Ferrojit => ("export FERROJIT_PERF_MAP=1\n", ",perf_map=consume"),
        _ => ("", ""),
    };
    let line = format!(
        "mkdir -p \"{scratch}\"\nrm -f \"{out}\" \"{totals}\"\n{exports}{perf_map}\
         export PYTHONHASHSEED=0\n\
         QEMU_PLUGIN=\"{plugin},out={totals}{map_option}\" {prefix}{py} \"{script}\" \
         --worker -p 1 -l {loops} -w {warmups} -n {values} --quiet -o \"{out}\" >/dev/null\n",
        plugin = job.plugin.display(),
        py = shell_words(&job.recipe.argv),
        script = job.script,
        loops = job.loops,
        warmups = job.warmups,
    );
    let o = h.sh(&line)?;
    if o.code != 0 {
        bail!(
            "counting {} ({} timed values) failed ({}): {}",
            job.cell.id(),
            values,
            o.code,
            tail(&o.stderr, 1500)
        );
    }
    let text = h.read_file(&totals).with_context(|| {
        format!(
            "the qemu plugin wrote no totals for {} (is qemu-user installed?)",
            job.cell.id()
        )
    })?;
    h.sh(&format!("rm -f \"{out}\" \"{totals}\""))?;
    parse_totals(&text)
}

/// One benchmark of a comparison by counts: instructions per loop on each side.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchmarkCounts {
    pub benchmark: String,
    pub baseline_per_loop: Option<f64>,
    pub candidate_per_loop: Option<f64>,
    /// In ferrojit's generated code (ferrojit cells only).
    pub baseline_generated_per_loop: Option<f64>,
    pub candidate_generated_per_loop: Option<f64>,
    /// Baseline instructions over candidate instructions (above 1: the candidate executes
    /// fewer), as a speed ratio reads.
    pub ratio: Option<f64>,
    pub verdict: Verdict,
}

/// A comparison decided by executed instructions.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CountsComparison {
    pub per_benchmark: Vec<BenchmarkCounts>,
    /// Geometric mean of the ratios, when every benchmark has one.
    pub geomean: Option<f64>,
    pub verdict: Verdict,
    pub reason: String,
}

/// Whether a ratio of counts meets the target. Counts are one run on each side, without an
/// interval: a ratio is taken as it is.
fn meets(ratio: f64, target: &Target) -> Verdict {
    let ok = match target.at_least {
        true => ratio >= target.value,
        false => ratio <= target.value,
    };
    if ok {
        Verdict::Holds
    } else {
        Verdict::Fails
    }
}

/// Compares two sides by their counts, benchmark by benchmark (`sides` gives each benchmark's
/// baseline and candidate counts, if counted). None when neither side has any counts.
pub fn compare(
    sides: &[(String, Option<&CellCounts>, Option<&CellCounts>)],
    target: &Target,
) -> Option<CountsComparison> {
    if sides.iter().all(|(_, b, c)| b.is_none() && c.is_none()) {
        return None;
    }
    let per_benchmark: Vec<BenchmarkCounts> = sides
        .iter()
        .map(|(name, base, cand)| {
            let (b, c) = (base.map(|x| x.per_loop()), cand.map(|x| x.per_loop()));
            let ratio = match (b, c) {
                (Some(b), Some(c)) if b > 0.0 && c > 0.0 => Some(b / c),
                _ => None,
            };
            BenchmarkCounts {
                benchmark: name.clone(),
                baseline_per_loop: b,
                candidate_per_loop: c,
                baseline_generated_per_loop: base.and_then(|x| x.generated_per_loop()),
                candidate_generated_per_loop: cand.and_then(|x| x.generated_per_loop()),
                ratio,
                verdict: ratio.map_or(Verdict::Inconclusive, |r| meets(r, target)),
            }
        })
        .collect();
    let ratios: Vec<f64> = per_benchmark.iter().filter_map(|b| b.ratio).collect();
    let (geomean, verdict, reason) = if ratios.len() < per_benchmark.len() {
        (
            None,
            Verdict::Inconclusive,
            format!(
                "{} of {} benchmarks have instruction counts on both sides",
                ratios.len(),
                per_benchmark.len()
            ),
        )
    } else {
        let g = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
        let below = per_benchmark
            .iter()
            .filter(|b| b.verdict == Verdict::Fails)
            .count();
        let verdict = meets(g, target);
        let side = if verdict == Verdict::Holds {
            "meets"
        } else {
            "misses"
        };
        (
            Some(g),
            verdict,
            format!(
                "by executed instructions per loop (qemu plugin, one counted value per side): \
                 geometric mean of baseline/candidate {g:.4} {side} {target}; {below} of {} \
                 benchmarks miss it on their own",
                per_benchmark.len()
            ),
        )
    };
    Some(CountsComparison {
        per_benchmark,
        geomean,
        verdict,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_is_the_difference_of_the_two_runs() {
        let one = parse_totals(
            r#"{"instructions": 1000, "generated_instructions": 100, "translated_blocks": 7}"#,
        )
        .unwrap();
        let two = parse_totals(r#"{"instructions": 1600, "generated_instructions": 350}"#).unwrap();
        assert_eq!(one_value(&one, &two), (600, Some(250)));
        let plain = parse_totals(r#"{"instructions": 2000}"#).unwrap();
        assert_eq!(one_value(&one, &plain), (1000, None));
        // A second run that counted less (noise in start-up) gives zero, not a wrap.
        assert_eq!(one_value(&two, &one).0, 0);
        assert!(parse_totals("{}").is_err());
    }

    #[test]
    fn per_loop_divides_by_the_loops_and_outcomes_round_trip() {
        let c = CellCounts {
            loops: 4,
            per_value: 1000,
            generated_per_value: Some(200),
            counter: "qemu".into(),
        };
        assert_eq!(c.per_loop(), 250.0);
        assert_eq!(c.generated_per_loop(), Some(50.0));
        for o in [Outcome::Counted(c), Outcome::Error("no qemu".into())] {
            let text = serde_json::to_string(&o).unwrap();
            assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), o);
        }
    }

    fn counted(loops: u64, per_value: u64) -> CellCounts {
        CellCounts {
            loops,
            per_value,
            generated_per_value: None,
            counter: "qemu".into(),
        }
    }

    #[test]
    fn a_comparison_by_counts_divides_baseline_by_candidate_per_loop() {
        let target = Target::parse("ratio >= 1.0").unwrap();
        let (a, b) = (counted(10, 2000), counted(20, 2000));
        // Candidate at 100 per loop against 200: 2x; and 100 against 100: 1x.
        let sides = vec![
            ("fast".to_string(), Some(&a), Some(&b)),
            ("same".to_string(), Some(&b), Some(&b)),
        ];
        let c = compare(&sides, &target).unwrap();
        assert_eq!(c.per_benchmark[0].ratio, Some(2.0));
        assert_eq!(c.per_benchmark[1].ratio, Some(1.0));
        assert_eq!(c.verdict, Verdict::Holds);
        assert!((c.geomean.unwrap() - 2f64.sqrt()).abs() < 1e-12);
        let strict = Target::parse("ratio >= 1.5").unwrap();
        let c = compare(&sides, &strict).unwrap();
        assert_eq!(c.verdict, Verdict::Fails, "{}", c.reason);
        assert_eq!(c.per_benchmark[0].verdict, Verdict::Holds);
        assert_eq!(c.per_benchmark[1].verdict, Verdict::Fails);
        assert!(
            c.reason.contains("1 of 2 benchmarks miss it"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn a_side_without_counts_leaves_the_comparison_inconclusive() {
        let target = Target::parse("ratio >= 1.0").unwrap();
        let a = counted(1, 100);
        let sides = vec![("x".to_string(), Some(&a), None)];
        let c = compare(&sides, &target).unwrap();
        assert_eq!(c.verdict, Verdict::Inconclusive);
        assert_eq!(c.geomean, None);
        assert!(compare(&[("x".to_string(), None, None)], &target).is_none());
    }
}
