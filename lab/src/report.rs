//! `report`: from a run folder to the summary (versioned JSON, schema in docs/LAB.md), a
//! markdown table, and the HTML page (see `html`).
//!
//! Cross-host comparisons that involve an emulated host get no speed verdict (`not-applicable`,
//! with the reason); that host's within-host ratios are reported, flagged as emulated, together
//! with ferrojit's counters (compiled functions, code bytes, deopts) from its stats files.
//!
//! A benchmark script that times several benchmarks (pyperformance's scimark, logging, deepcopy,
//! pprint) is one cell whose time is their geometric mean, process by process; each one's mean
//! is kept in the cell's `parts`.
//!
//! ferrojit's counters come from one JSON line per process; per cell they are aggregated over
//! the worker processes: counts and reasons as means per process, exits per guard site as the
//! most any one process took there (and the top sites). Fields a build does not write count as
//! absent, fields the lab does not know are ignored.

use crate::config::{Comparison, Config, Selector, Target};
use crate::counts;
use crate::matrix::{self, Cell, HostRecord, Manifest};
use crate::stats::{self, Bootstrap, CellStats, Ratio, Samples, Verdict};
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub const SCHEMA: &str = "ferrojit-lab/summary";
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub schema: &'static str,
    pub schema_version: u32,
    pub created: String,
    pub run_created: String,
    pub run_dir: String,
    pub settings: crate::config::Settings,
    pub hosts: BTreeMap<String, HostRecord>,
    pub cells: Vec<CellReport>,
    pub comparisons: Vec<ComparisonReport>,
    pub sweeps: Vec<Sweep>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct CellReport {
    pub id: String,
    pub host: String,
    pub runtime: String,
    pub knobs: BTreeMap<String, String>,
    pub benchmark: String,
    pub emulated: bool,
    /// "complete", "partial" (some rounds missing) or "failed" (no data).
    pub status: String,
    pub rounds_done: u32,
    pub error: Option<String>,
    pub stats: Option<CellStats>,
    /// Per-process means (seconds), for the distribution plots.
    pub process_means: Vec<f64>,
    /// The loops per value the cell's processes ran with (one value when pinned).
    pub loops: Vec<u64>,
    /// The benchmarks the script timed (one for most; the cell's time is their geometric mean).
    pub parts: Vec<PartReport>,
    /// ferrojit's counters, aggregated over the worker processes.
    pub counters: Option<Counters>,
    /// Executed instructions (setting `count_instructions`).
    pub counts: Option<counts::CellCounts>,
    /// Why the cell could not be counted.
    pub counts_error: Option<String>,
}

/// One benchmark timed by a cell's script.
#[derive(Debug, Clone, Serialize)]
pub struct PartReport {
    pub name: String,
    pub processes: usize,
    /// Mean of its values (seconds).
    pub mean: Option<f64>,
    pub loops: Vec<u64>,
}

/// ferrojit's counters of one cell, over its worker processes: means per process, except
/// `deopt_sites` (the most exits any one process took at each site).
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Counters {
    /// Worker processes whose counters were read.
    pub processes: usize,
    pub functions_compiled: f64,
    pub functions_refused: f64,
    pub functions_failed: f64,
    pub code_bytes: f64,
    /// Exits after a failed guard, all reasons together.
    pub deopts: f64,
    pub deopts_by_reason: BTreeMap<String, f64>,
    /// Exits per guard site ("file:qualname @offset reason"): the most any one process took.
    pub deopt_sites: BTreeMap<String, u64>,
    /// The sites with the most exits (by `deopt_sites`), most first; at most [`TOP_SITES`].
    pub top_deopt_sites: Vec<SiteExits>,
    /// Functions the compiler refused, by reason.
    pub refused_reasons: BTreeMap<String, f64>,
    /// Functions whose compilation failed, by reason.
    pub failed_reasons: BTreeMap<String, f64>,
    /// Functions compiled again because a speculation kept failing.
    pub recompilations: f64,
    /// Instructions given their generic path when recompiled.
    pub generic_sites: f64,
    pub isa: String,
}

/// A guard site and the most exits one process took there.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteExits {
    pub site: String,
    pub exits: u64,
}

/// How many deopt sites a cell's report names.
pub const TOP_SITES: usize = 5;

#[derive(Debug, Serialize)]
pub struct ComparisonReport {
    pub name: String,
    pub baseline: Selector,
    pub candidate: Selector,
    pub target: Target,
    pub emulated: bool,
    pub per_benchmark: Vec<BenchmarkRatio>,
    /// Geometric mean over the benchmarks that have data on both sides.
    pub geomean: Option<Ratio>,
    pub verdict: Verdict,
    pub reason: String,
    pub warnings: Vec<String>,
    /// The same comparison by executed instructions, when the cells were counted. A comparison
    /// that involves an emulated host takes its verdict and reason from it.
    pub counts: Option<counts::CountsComparison>,
}

#[derive(Debug, Serialize)]
pub struct BenchmarkRatio {
    pub benchmark: String,
    pub ratio: Option<Ratio>,
    pub verdict: Verdict,
    pub reason: String,
}

/// Medians of one runtime over its knob grid, per host and benchmark.
#[derive(Debug, Serialize)]
pub struct Sweep {
    pub host: String,
    pub runtime: String,
    pub benchmark: String,
    pub points: Vec<SweepPoint>,
}

#[derive(Debug, Serialize)]
pub struct SweepPoint {
    pub knobs: BTreeMap<String, String>,
    pub mean: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// One benchmark of a pyperf JSON file (a script may time several).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Part {
    pub name: String,
    /// The values of each worker process (calibration runs have none).
    pub processes: Vec<Vec<f64>>,
    /// The loops per value its processes ran with.
    pub loops: BTreeSet<u64>,
}

/// `key` from the innermost metadata that has it (pyperf moves metadata common to all runs up
/// to the benchmark, and common to all benchmarks up to the file).
fn metadata<'a>(key: &str, levels: &[&'a Value]) -> Option<&'a Value> {
    levels.iter().find_map(|l| l["metadata"].get(key))
}

/// Reads one pyperf JSON file: each benchmark with the values of each worker run.
pub fn read_pyperf(text: &str) -> Result<Vec<Part>> {
    let v: Value = serde_json::from_str(text).context("not pyperf JSON")?;
    let mut out = Vec::new();
    for b in v["benchmarks"]
        .as_array()
        .context("pyperf JSON without benchmarks")?
    {
        let name = metadata("name", &[b, &v])
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string();
        let mut part = Part {
            name,
            ..Part::default()
        };
        for run in b["runs"].as_array().into_iter().flatten() {
            let values: Vec<f64> = run["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_f64())
                .collect();
            if !values.is_empty() {
                part.loops
                    .extend(metadata("loops", &[run, b, &v]).and_then(|l| l.as_u64()));
                part.processes.push(values);
            }
        }
        out.push(part);
    }
    Ok(out)
}

/// The loops a pyperf calibration (`--worker --calibrate-loops`) chose; for several benchmarks,
/// the smallest.
pub fn calibrated_loops(text: &str) -> Result<u64> {
    let v: Value = serde_json::from_str(text).context("not pyperf JSON")?;
    let benchmarks = v["benchmarks"]
        .as_array()
        .context("pyperf JSON without benchmarks")?;
    let loops = benchmarks.iter().map(|b| {
        let runs: Vec<&Value> = b["runs"].as_array().into_iter().flatten().collect();
        let levels: Vec<&Value> = runs.into_iter().chain([b, &v]).collect();
        metadata("calibrate_loops", &levels)
            .or_else(|| metadata("loops", &levels))
            .and_then(|l| l.as_u64())
    });
    loops
        .collect::<Option<Vec<u64>>>()
        .and_then(|l| l.into_iter().min())
        .context("the calibration recorded no loops")
}

/// A cell's benchmarks over its finished rounds, in the order the script ran them.
pub fn load_parts(cell: &Cell, dir: &Path, rounds: u32) -> Result<Vec<Part>> {
    let mut parts: Vec<Part> = Vec::new();
    for r in cell.rounds_done(dir, rounds) {
        let p = cell.round_file(dir, r);
        let text = std::fs::read_to_string(&p)?;
        for part in read_pyperf(&text).with_context(|| format!("reading {}", p.display()))? {
            match parts.iter_mut().find(|q| q.name == part.name) {
                Some(q) => {
                    q.processes.extend(part.processes);
                    q.loops.extend(part.loops);
                }
                None => parts.push(part),
            }
        }
    }
    Ok(parts)
}

/// The samples of a cell: its benchmark's, or for several, the geometric mean over them of the
/// i-th process's j-th value. Processes of different benchmarks are independent runs, so pairing
/// them by index gives independent processes of the combined benchmark.
pub fn combine(parts: &[Part]) -> Samples {
    match parts {
        [] => Samples::default(),
        [one] => Samples {
            processes: one.processes.clone(),
        },
        _ => {
            let n = parts.iter().map(|p| p.processes.len()).min().unwrap_or(0);
            let geomean = |i: usize, j: usize| {
                (parts.iter().map(|p| p.processes[i][j].ln()).sum::<f64>() / parts.len() as f64)
                    .exp()
            };
            let processes = (0..n)
                .map(|i| {
                    let values = parts
                        .iter()
                        .map(|p| p.processes[i].len())
                        .min()
                        .unwrap_or(0);
                    (0..values).map(|j| geomean(i, j)).collect()
                })
                .collect();
            Samples { processes }
        }
    }
}

/// A cell's samples over its finished rounds.
pub fn load_samples(cell: &Cell, dir: &Path, rounds: u32) -> Result<Samples> {
    Ok(combine(&load_parts(cell, dir, rounds)?))
}

fn part_report(p: &Part) -> PartReport {
    let values: Vec<f64> = p.processes.iter().flatten().copied().collect();
    let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    PartReport {
        name: p.name.clone(),
        processes: p.processes.len(),
        mean,
        loops: p.loops.iter().copied().collect(),
    }
}

/// The lines of one round's stats file that come from pyperf's worker processes: each process
/// appends its line when it exits, and pyperf's parent process exits after its workers, so the
/// last line is the parent's (which only starts the workers) and is left out.
pub fn worker_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > 1 {
        lines.pop();
    }
    lines
}

/// Adds a JSON object's numeric values to `into`, key by key.
fn add_counts(into: &mut BTreeMap<String, f64>, v: &Value) {
    for (k, x) in v.as_object().into_iter().flatten() {
        *into.entry(k.clone()).or_default() += x.as_f64().unwrap_or(0.0);
    }
}

/// Aggregates ferrojit's stats lines (one JSON object per worker process); None without any.
/// Lines that are not JSON are skipped.
pub fn aggregate_counters<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Counters> {
    let mut c = Counters::default();
    for line in lines {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if !v.is_object() {
            continue;
        }
        let num = |k: &str| v[k].as_f64().unwrap_or(0.0);
        c.processes += 1;
        c.functions_compiled += num("functions_compiled");
        c.functions_refused += num("functions_refused");
        c.functions_failed += num("functions_failed");
        c.code_bytes += num("code_bytes");
        c.recompilations += num("recompilations");
        c.generic_sites += num("generic_sites");
        add_counts(&mut c.deopts_by_reason, &v["deopts"]);
        add_counts(&mut c.refused_reasons, &v["refused_reasons"]);
        add_counts(&mut c.failed_reasons, &v["failed_reasons"]);
        for (site, x) in v["deopt_sites"].as_object().into_iter().flatten() {
            let exits = x
                .as_u64()
                .or_else(|| x.as_f64().map(|f| f as u64))
                .unwrap_or(0);
            let most = c.deopt_sites.entry(site.clone()).or_default();
            *most = (*most).max(exits);
        }
        if let Some(isa) = v["isa"].as_str() {
            c.isa = isa.to_string();
        }
    }
    if c.processes == 0 {
        return None;
    }
    let n = c.processes as f64;
    for x in [
        &mut c.functions_compiled,
        &mut c.functions_refused,
        &mut c.functions_failed,
        &mut c.code_bytes,
        &mut c.recompilations,
        &mut c.generic_sites,
    ] {
        *x /= n;
    }
    for m in [
        &mut c.deopts_by_reason,
        &mut c.refused_reasons,
        &mut c.failed_reasons,
    ] {
        m.values_mut().for_each(|x| *x /= n);
    }
    c.deopts = c.deopts_by_reason.values().fold(0.0, |a, b| a + b);
    c.top_deopt_sites = top(&c.deopt_sites, TOP_SITES)
        .into_iter()
        .map(|(site, exits)| SiteExits { site, exits })
        .collect();
    Some(c)
}

/// The `n` largest entries, largest first (ties by name).
pub fn top<T: Copy + PartialOrd>(m: &BTreeMap<String, T>, n: usize) -> Vec<(String, T)> {
    let mut v: Vec<(String, T)> = m.iter().map(|(k, x)| (k.clone(), *x)).collect();
    v.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    v.truncate(n);
    v
}

fn load_counters(cell: &Cell, dir: &Path, rounds: u32) -> Option<Counters> {
    let texts: Vec<String> = (0..rounds)
        .filter_map(|r| std::fs::read_to_string(cell.stats_file(dir, r)).ok())
        .collect();
    aggregate_counters(texts.iter().flat_map(|t| worker_lines(t)))
}

fn is_emulated(hosts: &BTreeMap<String, HostRecord>, config: &Config, host: &str) -> bool {
    hosts
        .get(host)
        .and_then(|h| h.probe.as_ref())
        .map(|p| p.emulated)
        .unwrap_or(false)
        || matches!(
            config.hosts.get(host),
            Some(crate::config::HostConfig::Emulated { .. })
        )
}

pub fn summarize(dir: &Path) -> Result<Summary> {
    let manifest = Manifest::load(dir)?;
    let config = &manifest.config;
    let rounds = config.settings.rounds();
    let boot = Bootstrap {
        resamples: config.settings.resamples,
        confidence: config.settings.confidence,
        seed: config.settings.seed,
    };
    let failures = matrix::load_failures(dir);
    let mut samples: BTreeMap<Cell, Samples> = BTreeMap::new();
    let mut cells = Vec::new();
    for cell in matrix::cells(config) {
        let parts = load_parts(&cell, dir, rounds)?;
        let s = combine(&parts);
        let done = cell.rounds_done(dir, rounds).len() as u32;
        let st = stats::cell(&s, &boot);
        let status = if done == rounds {
            "complete"
        } else if done > 0 {
            "partial"
        } else {
            "failed"
        };
        let mut means: Vec<f64> = s
            .processes
            .iter()
            .map(|p| p.iter().sum::<f64>() / p.len() as f64)
            .collect();
        means.sort_by(f64::total_cmp);
        let (counted, counts_error) = match counts::load(&cell, dir) {
            Some(counts::Outcome::Counted(c)) => (Some(c), None),
            Some(counts::Outcome::Error(e)) => (None, Some(e)),
            None => (None, None),
        };
        cells.push(CellReport {
            id: cell.id(),
            host: cell.host.clone(),
            runtime: cell.runtime.clone(),
            knobs: cell.knobs.clone(),
            benchmark: cell.benchmark.clone(),
            emulated: is_emulated(&manifest.hosts, config, &cell.host),
            status: status.into(),
            rounds_done: done,
            error: failures.get(&cell.id()).cloned(),
            stats: st,
            process_means: means,
            loops: parts
                .iter()
                .flat_map(|p| p.loops.iter().copied())
                .collect::<BTreeSet<u64>>()
                .into_iter()
                .collect(),
            parts: parts.iter().map(part_report).collect(),
            counters: load_counters(&cell, dir, rounds),
            counts: counted,
            counts_error,
        });
        samples.insert(cell, s);
    }
    let comparisons = config
        .comparisons
        .iter()
        .map(|c| compare(c, config, &manifest.hosts, &samples, &cells, &boot))
        .collect();
    let sweeps = sweeps(config, &cells);
    let mut warnings = Vec::new();
    for (h, rec) in &manifest.hosts {
        for w in &rec.warnings {
            warnings.push(format!("{h}: {w}"));
        }
        if let Some(e) = &rec.error {
            warnings.push(format!("{h}: {e}"));
        }
    }
    for c in cells.iter().filter(|c| c.status != "complete") {
        warnings.push(format!(
            "{} is {} ({}/{} rounds){}",
            c.id,
            c.status,
            c.rounds_done,
            rounds,
            c.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    Ok(Summary {
        schema: SCHEMA,
        schema_version: SCHEMA_VERSION,
        created: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        run_created: manifest.created.clone(),
        run_dir: dir.display().to_string(),
        settings: config.settings.clone(),
        hosts: manifest.hosts.clone(),
        cells,
        comparisons,
        sweeps,
        warnings,
    })
}

fn selected<'a>(
    sel: &Selector,
    bench: &str,
    samples: &'a BTreeMap<Cell, Samples>,
) -> Option<(&'a Cell, &'a Samples)> {
    samples.iter().find(|(c, _)| {
        c.host == sel.host
            && c.runtime == sel.runtime
            && c.knobs == sel.knobs
            && c.benchmark == bench
    })
}

fn compare(
    c: &Comparison,
    config: &Config,
    hosts: &BTreeMap<String, HostRecord>,
    samples: &BTreeMap<Cell, Samples>,
    cells: &[CellReport],
    boot: &Bootstrap,
) -> ComparisonReport {
    let target = Target::parse(&c.target).expect("validated with the configuration");
    let emulated = is_emulated(hosts, config, &c.baseline.host)
        || is_emulated(hosts, config, &c.candidate.host);
    let cross_host = c.baseline.host != c.candidate.host;
    let benches: Vec<String> = c
        .benchmarks
        .clone()
        .unwrap_or_else(|| config.benchmarks.clone());
    let mut warnings = Vec::new();
    let mut pairs = Vec::new();
    let mut per_benchmark = Vec::new();
    for b in &benches {
        let (base, cand) = (
            selected(&c.baseline, b, samples),
            selected(&c.candidate, b, samples),
        );
        let ratio = match (base, cand) {
            // No speed figure at all across hosts when one is emulated.
            _ if cross_host && emulated => None,
            (Some((bc, bs)), Some((cc, cs))) => {
                for cell in [bc, cc] {
                    if let Some(st) = cells
                        .iter()
                        .find(|r| r.id == cell.id())
                        .and_then(|r| r.stats.as_ref())
                    {
                        if stats::too_wide_for(st, &target) {
                            warnings.push(format!(
                                "{}: spread too wide for a question of this size (interval ±{:.1}% of the mean, coefficient of variation {:.1}%)",
                                cell.id(),
                                (st.ci_high - st.ci_low) / 2.0 / st.mean * 100.0,
                                st.cv * 100.0
                            ));
                        }
                    }
                }
                let r = stats::ratio(bs, cs, boot);
                if r.is_some() {
                    pairs.push((bs, cs));
                }
                r
            }
            _ => None,
        };
        let (verdict, reason) = decide(
            ratio.as_ref(),
            &target,
            boot.confidence,
            cross_host && emulated,
        );
        per_benchmark.push(BenchmarkRatio {
            benchmark: b.clone(),
            ratio,
            verdict,
            reason,
        });
    }
    let geomean = if pairs.len() == benches.len() {
        stats::ratios_geomean(&pairs, boot)
    } else {
        None
    };
    let (verdict, mut reason) = if pairs.len() < benches.len() && !(cross_host && emulated) {
        (
            Verdict::Inconclusive,
            format!(
                "{} of {} benchmarks have data on both sides",
                pairs.len(),
                benches.len()
            ),
        )
    } else {
        decide(
            geomean.as_ref(),
            &target,
            boot.confidence,
            cross_host && emulated,
        )
    };
    let counted = counts_of(c, &benches, cells);
    let by_counts = counted.as_ref().filter(|k| emulated && k.geomean.is_some());
    let verdict = match by_counts {
        Some(k) => {
            reason = format!(
                "{} (emulated host: decided by executed instructions, not timings)",
                k.reason
            );
            k.verdict
        }
        None => {
            if emulated && !cross_host {
                reason.push_str(
                    " (emulated host: a within-host ratio under qemu, not a hardware speed measurement)",
                );
            }
            verdict
        }
    };
    ComparisonReport {
        name: c.name.clone(),
        baseline: c.baseline.clone(),
        candidate: c.candidate.clone(),
        target,
        emulated,
        per_benchmark,
        geomean,
        verdict,
        reason,
        warnings,
        counts: counted,
    }
}

/// The comparison by executed instructions, from the cells' counts.
fn counts_of(
    c: &Comparison,
    benches: &[String],
    cells: &[CellReport],
) -> Option<counts::CountsComparison> {
    let find = |sel: &Selector, b: &str| {
        cells
            .iter()
            .find(|r| {
                r.host == sel.host
                    && r.runtime == sel.runtime
                    && r.knobs == sel.knobs
                    && r.benchmark == b
            })
            .and_then(|r| r.counts.as_ref())
    };
    let sides: Vec<_> = benches
        .iter()
        .map(|b| (b.clone(), find(&c.baseline, b), find(&c.candidate, b)))
        .collect();
    let target = Target::parse(&c.target).expect("validated with the configuration");
    counts::compare(&sides, &target)
}

fn decide(
    r: Option<&Ratio>,
    target: &Target,
    confidence: f64,
    emulated_cross_host: bool,
) -> (Verdict, String) {
    if emulated_cross_host {
        return (
            Verdict::NotApplicable,
            "an emulated host's timings never enter a cross-host speed verdict; see its within-host ratios and counts".into(),
        );
    }
    match r {
        Some(r) => stats::verdict(r, target, confidence),
        None => (
            Verdict::Inconclusive,
            "no data on one side (failed or missing cells)".into(),
        ),
    }
}

fn sweeps(config: &Config, cells: &[CellReport]) -> Vec<Sweep> {
    let mut out = Vec::new();
    for (rname, rt) in &config.runtimes {
        if rt.knobs.is_empty() {
            continue;
        }
        for host in config.hosts.keys() {
            for b in &config.benchmarks {
                let points: Vec<SweepPoint> = cells
                    .iter()
                    .filter(|c| &c.runtime == rname && &c.host == host && &c.benchmark == b)
                    .filter_map(|c| {
                        c.stats.as_ref().map(|s| SweepPoint {
                            knobs: c.knobs.clone(),
                            mean: s.mean,
                            ci_low: s.ci_low,
                            ci_high: s.ci_high,
                        })
                    })
                    .collect();
                if !points.is_empty() {
                    out.push(Sweep {
                        host: host.clone(),
                        runtime: rname.clone(),
                        benchmark: b.clone(),
                        points,
                    });
                }
            }
        }
    }
    out
}

/// The summary's file name: `summary_<hostA>_vs_<hostB>_<timestamp>.json` when a comparison
/// spans two hosts, `summary_<timestamp>.json` otherwise.
pub fn summary_name(s: &Summary) -> String {
    let stamp = s.created.replace([':', '-'], "");
    match s
        .comparisons
        .iter()
        .find(|c| c.baseline.host != c.candidate.host)
    {
        Some(c) => format!(
            "summary_{}_vs_{}_{stamp}.json",
            c.baseline.host, c.candidate.host
        ),
        None => format!("summary_{stamp}.json"),
    }
}

/// Writes the summary JSON and the HTML page into the run folder; returns their paths.
pub fn write(s: &Summary, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let json = dir.join(summary_name(s));
    matrix::write_atomic(&json, &serde_json::to_string_pretty(s)?)?;
    let html = dir.join("report.html");
    matrix::write_atomic(&html, &crate::html::page(s))?;
    Ok((json, html))
}

fn secs(x: f64) -> String {
    if x < 1e-3 {
        format!("{:.1} us", x * 1e6)
    } else if x < 1.0 {
        format!("{:.2} ms", x * 1e3)
    } else {
        format!("{x:.3} s")
    }
}

fn fmt_ratio(r: &Option<Ratio>) -> String {
    match r {
        Some(r) => format!(
            "{:.3}x [{:.3}, {:.3}] p={:.3}",
            r.estimate, r.ci_low, r.ci_high, r.p_value
        ),
        None => "-".into(),
    }
}

/// `reason (count)` for the largest entries of a map, most first.
pub fn top_list(m: &BTreeMap<String, f64>, n: usize) -> String {
    let all: Vec<String> = top(m, n)
        .into_iter()
        .map(|(k, x)| format!("{k} ({})", count(x)))
        .collect();
    let more = m.len().saturating_sub(n);
    let mut s = all.join("; ");
    if more > 0 {
        s.push_str(&format!("; {more} more"));
    }
    s
}

/// The top deopt sites of a cell as `site (exits)`.
pub fn sites_list(c: &Counters) -> String {
    let all: Vec<String> = c
        .top_deopt_sites
        .iter()
        .map(|s| format!("{} ({})", s.site, s.exits))
        .collect();
    all.join("; ")
}

/// A per-process mean: whole numbers without decimals, small ones with one.
fn count(x: f64) -> String {
    if x >= 10.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Cells with ferrojit counters worth a row: something was compiled, refused or failed.
pub fn counted_cells(s: &Summary) -> Vec<(&CellReport, &Counters)> {
    s.cells
        .iter()
        .filter_map(|c| c.counters.as_ref().map(|k| (c, k)))
        .filter(|(_, k)| k.functions_compiled + k.functions_refused + k.functions_failed > 0.0)
        .collect()
}

/// The markdown section on what ferrojit did in each cell: compiled, refused, deopts, and where.
fn counters_markdown(s: &Summary) -> String {
    let rows = counted_cells(s);
    let quiet = s.cells.iter().filter(|c| c.counters.is_some()).count() - rows.len();
    if rows.is_empty() {
        return String::new();
    }
    let mut m = String::from(
        "\n## ferrojit: compilations, deopts, refusals (per worker process)\n\n\
         | cell | compiled | refused | failed | recompiled | deopts: top reasons | top deopt sites (most exits in one process) | refusal reasons |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let cell = |s: String| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.replace('|', "\\|")
        }
    };
    for (c, k) in rows {
        let mut reasons = top_list(&k.refused_reasons, 3);
        if !k.failed_reasons.is_empty() {
            reasons.push_str(&format!(
                "{}failed: {}",
                if reasons.is_empty() { "" } else { "; " },
                top_list(&k.failed_reasons, 3)
            ));
        }
        let deopts = match top_list(&k.deopts_by_reason, 3) {
            r if r.is_empty() => count(k.deopts),
            r => format!("{}: {r}", count(k.deopts)),
        };
        m.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.id,
            count(k.functions_compiled),
            count(k.functions_refused),
            count(k.functions_failed),
            count(k.recompilations),
            cell(deopts),
            cell(sites_list(k)),
            cell(reasons)
        ));
    }
    if quiet > 0 {
        m.push_str(&format!(
            "\n{quiet} ferrojit cells compiled nothing (e.g. the hook alone) and are left out.\n"
        ));
    }
    m
}

/// Instructions in thousands, or millions past ten million.
fn instructions(x: f64) -> String {
    if x >= 1e7 {
        format!("{:.1}M", x / 1e6)
    } else {
        format!("{:.1}k", x / 1e3)
    }
}

/// The markdown section on executed instructions: each counted cell, then each comparison by
/// counts.
fn counts_markdown(s: &Summary) -> String {
    let counted: Vec<&CellReport> = (s.cells.iter())
        .filter(|c| c.counts.is_some() || c.counts_error.is_some())
        .collect();
    if counted.is_empty() {
        return String::new();
    }
    let mut m = String::from(
        "\n## Executed instructions (per loop of the benchmark; one counted value, qemu plugin)\n\n\
         | cell | loops | instructions per loop | in generated code | counted by |\n|---|---|---|---|---|\n",
    );
    for c in counted {
        match (&c.counts, &c.counts_error) {
            (Some(k), _) => m.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                c.id,
                k.loops,
                instructions(k.per_loop()),
                k.generated_per_loop().map_or("-".into(), instructions),
                k.counter
            )),
            (None, Some(e)) => m.push_str(&format!(
                "| {} | - | not counted: {} | - | - |\n",
                c.id,
                e.replace('\n', " ").replace('|', "\\|")
            )),
            (None, None) => {}
        }
    }
    let with_counts: Vec<_> = (s.comparisons.iter())
        .filter_map(|c| c.counts.as_ref().map(|k| (c, k)))
        .collect();
    if !with_counts.is_empty() {
        m.push_str("\n| comparison | benchmark | baseline per loop | candidate per loop | ratio | target | verdict |\n|---|---|---|---|---|---|---|\n");
    }
    for (c, k) in with_counts {
        let opt = |x: Option<f64>| x.map_or("-".into(), instructions);
        for b in &k.per_benchmark {
            m.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                c.name,
                b.benchmark,
                opt(b.baseline_per_loop),
                opt(b.candidate_per_loop),
                b.ratio.map_or("-".into(), |r| format!("{r:.3}x")),
                c.target,
                b.verdict
            ));
        }
        m.push_str(&format!(
            "| **{}** | geometric mean | | | {} | {} | **{}** |\n",
            c.name,
            k.geomean.map_or("-".into(), |r| format!("{r:.3}x")),
            c.target,
            k.verdict
        ));
    }
    m
}

/// The markdown report.
pub fn markdown(s: &Summary) -> String {
    let pct = (s.settings.confidence * 100.0).round();
    let mut m = String::new();
    m.push_str(&format!("# ferrojit-lab report ({})\n\n", s.run_dir));
    m.push_str("## Hosts\n\n| host | arch | cpu | cores | emulated | governor | turbo |\n|---|---|---|---|---|---|---|\n");
    for (name, h) in &s.hosts {
        match &h.probe {
            Some(p) => m.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} | {} |\n",
                p.arch,
                p.cpu.trim(),
                p.cores,
                if p.emulated { "yes" } else { "no" },
                p.governor,
                p.turbo
            )),
            None => m.push_str(&format!(
                "| {name} | unreachable | {} | | | | |\n",
                h.error.clone().unwrap_or_default()
            )),
        }
    }
    m.push_str(&format!("\n## Cells\n\n| cell | status | processes x values | loops | mean | median | {pct}% interval of the mean | cv | ferrojit counters |\n|---|---|---|---|---|---|---|---|---|\n"));
    for c in &s.cells {
        let counters = c
            .counters
            .as_ref()
            .map(|k| {
                format!(
                    "{:.0} compiled, {:.0} code bytes, {:.0} deopts ({})",
                    k.functions_compiled, k.code_bytes, k.deopts, k.isa
                )
            })
            .unwrap_or_default();
        let loops: Vec<String> = c.loops.iter().map(|l| l.to_string()).collect();
        match &c.stats {
            Some(st) => m.push_str(&format!(
                "| {}{}{} | {} | {} x {} | {} | {} | {} | [{}, {}] | {:.1}% | {} |\n",
                c.id,
                if c.parts.len() > 1 {
                    format!(" ({} parts)", c.parts.len())
                } else {
                    String::new()
                },
                if c.emulated { " (emulated)" } else { "" },
                c.status,
                st.processes,
                st.values / st.processes.max(1),
                loops.join(", "),
                secs(st.mean),
                secs(st.median),
                secs(st.ci_low),
                secs(st.ci_high),
                st.cv * 100.0,
                counters
            )),
            None => m.push_str(&format!(
                "| {} | {} | - | - | - | - | - | - | {} |\n",
                c.id,
                c.status,
                c.error.clone().unwrap_or_default().replace('\n', " ")
            )),
        }
    }
    let mut combined: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in s.cells.iter().filter(|c| c.parts.len() > 1) {
        combined
            .entry(c.benchmark.as_str())
            .or_insert_with(|| c.parts.iter().map(|p| p.name.as_str()).collect());
    }
    if !combined.is_empty() {
        let list: Vec<String> = combined
            .iter()
            .map(|(b, parts)| format!("{b} ({})", parts.join(", ")))
            .collect();
        m.push_str(&format!(
            "\nA cell with parts times several benchmarks; its time is their geometric mean: {}.\n",
            list.join("; ")
        ));
    }
    m.push_str(&counters_markdown(s));
    m.push_str(&format!("\n## Comparisons (ratio = baseline time / candidate time; {pct}% bootstrap intervals over processes)\n\n| comparison | benchmark | ratio | target | verdict |\n|---|---|---|---|---|\n"));
    for c in &s.comparisons {
        for b in &c.per_benchmark {
            m.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                c.name,
                b.benchmark,
                fmt_ratio(&b.ratio),
                c.target,
                b.verdict
            ));
        }
        m.push_str(&format!(
            "| **{}** | geometric mean | {} | {} | **{}** |\n",
            c.name,
            fmt_ratio(&c.geomean),
            c.target,
            c.verdict
        ));
    }
    m.push_str(&counts_markdown(s));
    for c in &s.comparisons {
        m.push_str(&format!(
            "\n- **{}**: {} — {}\n",
            c.name, c.verdict, c.reason
        ));
        for w in &c.warnings {
            m.push_str(&format!("  - warning: {w}\n"));
        }
    }
    if !s.warnings.is_empty() {
        m.push_str("\n## Warnings\n\n");
        for w in &s.warnings {
            m.push_str(&format!("- {w}\n"));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two workers of a build that counts deopt sites and recompilations, one of an older build
    /// without those fields (and with a field the lab does not know), and a line that is not JSON.
    const STATS: &str = r#"{"isa":"x86_64","functions_compiled":10,"functions_refused":2,"refused_reasons":{"generator":2},"functions_failed":0,"failed_reasons":{},"deopts":{"type guard":6,"globals changed":1},"deopt_sites":{"bm.py:Task.run @12 type guard":5,"bm.py:Task.run @40 type guard":1,"bm.py:main @8 globals changed":1},"recompilations":1,"generic_sites":2,"code_bytes":1000}
{"isa":"x86_64","functions_compiled":12,"functions_refused":4,"refused_reasons":{"generator":2,"closure":2},"deopts":{"type guard":9},"deopt_sites":{"bm.py:Task.run @12 type guard":2,"bm.py:Task.run @40 type guard":7},"recompilations":3,"code_bytes":1400}
{"isa":"x86_64","functions_compiled":8,"functions_refused":0,"refused_reasons":{},"functions_failed":1,"failed_reasons":{"regalloc":1},"deopts":{"unbound local":3},"code_bytes":600,"a_field_from_the_future":[1,2]}
ferrojit: not a JSON line
"#;

    #[test]
    fn counters_are_means_per_process_and_sites_the_most_one_process_took() {
        let c = aggregate_counters(STATS.lines()).unwrap();
        assert_eq!(c.processes, 3, "the line that is not JSON is skipped");
        assert_eq!(c.functions_compiled, 10.0);
        assert_eq!(c.functions_refused, 2.0);
        assert_eq!(c.functions_failed, 1.0 / 3.0);
        assert_eq!(c.code_bytes, 1000.0);
        assert_eq!(
            c.recompilations,
            4.0 / 3.0,
            "the older build's line counts as none"
        );
        assert_eq!(c.generic_sites, 2.0 / 3.0);
        assert_eq!(c.deopts, 19.0 / 3.0);
        let by_reason: Vec<(&str, f64)> = c
            .deopts_by_reason
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            by_reason,
            vec![
                ("globals changed", 1.0 / 3.0),
                ("type guard", 5.0),
                ("unbound local", 1.0)
            ]
        );
        assert_eq!(c.refused_reasons["generator"], 4.0 / 3.0);
        assert_eq!(c.refused_reasons["closure"], 2.0 / 3.0);
        assert_eq!(c.failed_reasons["regalloc"], 1.0 / 3.0);
        assert_eq!(c.deopt_sites["bm.py:Task.run @12 type guard"], 5);
        assert_eq!(c.deopt_sites["bm.py:Task.run @40 type guard"], 7);
        let top: Vec<(&str, u64)> = c
            .top_deopt_sites
            .iter()
            .map(|s| (s.site.as_str(), s.exits))
            .collect();
        assert_eq!(
            top,
            vec![
                ("bm.py:Task.run @40 type guard", 7),
                ("bm.py:Task.run @12 type guard", 5),
                ("bm.py:main @8 globals changed", 1)
            ]
        );
        assert_eq!(c.isa, "x86_64");
    }

    #[test]
    fn an_older_build_alone_gives_empty_sites_and_no_recompilations() {
        let c = aggregate_counters(STATS.lines().skip(2)).unwrap();
        assert_eq!(
            (
                c.processes,
                c.functions_compiled,
                c.deopts,
                c.recompilations
            ),
            (1, 8.0, 3.0, 0.0)
        );
        let hook = aggregate_counters([r#"{"functions_compiled":0,"deopts":{}}"#]).unwrap();
        assert!(
            hook.deopts == 0.0 && hook.deopts.is_sign_positive(),
            "no deopts is 0, not -0"
        );
        assert!(c.deopt_sites.is_empty() && c.top_deopt_sites.is_empty());
        assert!(aggregate_counters("not json\n\n".lines()).is_none());
    }

    #[test]
    fn only_the_top_sites_are_named_most_first() {
        let sites: BTreeMap<String, u64> = (1..=8)
            .map(|i| (format!("f.py:g @{i} type guard"), i % 4))
            .collect();
        let line = serde_json::json!({ "deopt_sites": sites }).to_string();
        let c = aggregate_counters([line.as_str()]).unwrap();
        let top: Vec<&str> = c.top_deopt_sites.iter().map(|s| s.site.as_str()).collect();
        // Counts 1,2,3,0,1,2,3,0: the threes, then the twos (ties by name), then the first one.
        assert_eq!(
            top,
            vec![
                "f.py:g @3 type guard",
                "f.py:g @7 type guard",
                "f.py:g @2 type guard",
                "f.py:g @6 type guard",
                "f.py:g @1 type guard"
            ]
        );
    }

    #[test]
    fn the_last_line_of_a_round_is_pyperfs_parent_and_is_left_out() {
        assert_eq!(
            worker_lines("{\"a\":1}\n{\"a\":2}\n\n{\"parent\":1}\n"),
            vec!["{\"a\":1}", "{\"a\":2}"]
        );
        assert_eq!(
            worker_lines("{\"only\":1}\n"),
            vec!["{\"only\":1}"],
            "a lone line is kept"
        );
    }

    /// A pyperf file of a script with two benchmarks: common metadata moved up to the benchmark
    /// (loops) and to the file (the first benchmark's name in the file's metadata is shadowed).
    const TWO: &str = r#"{"version":"1.0","metadata":{"name":"suite","loops":99},"benchmarks":[
        {"metadata":{"name":"scimark_fft","loops":2},"runs":[{"warmups":[[1,0.5]]},{"values":[1.0,4.0]},{"values":[2.0,2.0]}]},
        {"metadata":{"name":"scimark_lu"},"runs":[{"metadata":{"loops":8},"values":[4.0,1.0]},{"metadata":{"loops":8},"values":[8.0,8.0]}]}]}"#;

    #[test]
    fn a_script_with_several_benchmarks_is_read_part_by_part() {
        let parts = read_pyperf(TWO).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "scimark_fft");
        assert_eq!(
            parts[0].processes,
            vec![vec![1.0, 4.0], vec![2.0, 2.0]],
            "the calibration run has no values"
        );
        assert_eq!(parts[0].loops.iter().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(
            parts[1].loops.iter().copied().collect::<Vec<_>>(),
            vec![8],
            "run metadata wins"
        );
        let s = combine(&parts);
        // Value by value: sqrt(1*4), sqrt(4*1); sqrt(2*8), sqrt(2*8).
        assert_eq!(s.processes, vec![vec![2.0, 2.0], vec![4.0, 4.0]]);
        assert_eq!(combine(&parts[..1]).processes, parts[0].processes);
    }

    #[test]
    fn calibration_gives_the_smallest_loops_of_a_scripts_benchmarks() {
        let cal = r#"{"metadata":{"name":"deepcopy"},"benchmarks":[
            {"metadata":{"calibrate_loops":256,"loops":256},"runs":[{"warmups":[[256,0.1]]}]},
            {"metadata":{"name":"deepcopy_reduce","calibrate_loops":16384,"loops":16384},"runs":[{"warmups":[[16384,0.1]]}]}]}"#;
        assert_eq!(calibrated_loops(cal).unwrap(), 256);
        let single = r#"{"metadata":{"name":"richards","calibrate_loops":2,"loops":2},"benchmarks":[{"runs":[{"warmups":[[2,0.1]]}]}]}"#;
        assert_eq!(calibrated_loops(single).unwrap(), 2);
        assert!(calibrated_loops(r#"{"benchmarks":[{"runs":[]}]}"#).is_err());
    }

    fn cell_report(id: &str, runtime: &str, counters: Option<Counters>) -> CellReport {
        CellReport {
            id: id.into(),
            host: "local".into(),
            runtime: runtime.into(),
            knobs: BTreeMap::new(),
            benchmark: "richards".into(),
            emulated: false,
            status: "complete".into(),
            rounds_done: 2,
            error: None,
            stats: None,
            process_means: vec![],
            loops: vec![2],
            parts: vec![],
            counters,
            counts: None,
            counts_error: None,
        }
    }

    #[test]
    fn the_reports_name_the_top_sites_and_reasons_of_cells_that_compiled() {
        let jit = aggregate_counters(STATS.lines()).unwrap();
        let hook = aggregate_counters([r#"{"functions_compiled":0}"#]).unwrap();
        let s = Summary {
            schema: SCHEMA,
            schema_version: SCHEMA_VERSION,
            created: String::new(),
            run_created: String::new(),
            run_dir: "r".into(),
            settings: crate::config::Settings::default(),
            hosts: BTreeMap::new(),
            cells: vec![
                cell_report("local/ferrojit/richards", "ferrojit", Some(jit)),
                cell_report("local/hook-only/richards", "hook-only", Some(hook)),
            ],
            comparisons: vec![],
            sweeps: vec![],
            warnings: vec![],
        };
        let m = markdown(&s);
        assert!(
            m.contains("| local/ferrojit/richards | 10 | 2 | 0.3 | 1.3 | 6.3: type guard (5); unbound local (1); globals changed (0.3) | bm.py:Task.run @40 type guard (7); bm.py:Task.run @12 type guard (5); bm.py:main @8 globals changed (1) | generator (1.3); closure (0.7); failed: regalloc (0.3) |"),
            "{m}"
        );
        assert!(!m.contains("| local/hook-only/richards | 0 |"), "{m}");
        assert!(m.contains("1 ferrojit cells compiled nothing"), "{m}");
        let h = crate::html::page(&s);
        assert!(h.contains("<td>bm.py:Task.run @40 type guard (7); bm.py:Task.run @12 type guard (5); bm.py:main @8 globals changed (1)</td>"), "{h}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["cells"][0]["counters"]["top_deopt_sites"][0],
            serde_json::json!({"site": "bm.py:Task.run @40 type guard", "exits": 7})
        );
        assert_eq!(
            json["cells"][0]["counters"]["deopt_sites"]["bm.py:Task.run @12 type guard"],
            5
        );
    }
}
