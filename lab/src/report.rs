//! `report`: from a run folder to the summary (versioned JSON, schema in docs/LAB.md), a
//! markdown table, and the HTML page (see `html`).
//!
//! Cross-host comparisons that involve an emulated host get no speed verdict (`not-applicable`,
//! with the reason); that host's within-host ratios are reported, flagged as emulated, together
//! with ferrojit's counters (compiled functions, code bytes, deopts) from its stats files.

use crate::config::{Comparison, Config, Selector, Target};
use crate::matrix::{self, Cell, HostRecord, Manifest};
use crate::stats::{self, Bootstrap, CellStats, Ratio, Samples, Verdict};
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
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
    /// ferrojit's counters, averaged per worker process.
    pub counters: Option<Counters>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Counters {
    pub processes: usize,
    pub functions_compiled: f64,
    pub functions_refused: f64,
    pub code_bytes: f64,
    pub deopts: f64,
    pub isa: String,
}

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

/// Reads one pyperf JSON file: the values of each worker run (calibration runs have none).
pub fn read_pyperf(text: &str) -> Result<Vec<Vec<f64>>> {
    let v: Value = serde_json::from_str(text).context("not pyperf JSON")?;
    let mut out = Vec::new();
    for b in v["benchmarks"].as_array().context("pyperf JSON without benchmarks")? {
        for run in b["runs"].as_array().into_iter().flatten() {
            let values: Vec<f64> = run["values"].as_array().into_iter().flatten().filter_map(|x| x.as_f64()).collect();
            if !values.is_empty() {
                out.push(values);
            }
        }
    }
    Ok(out)
}

/// A cell's samples over its finished rounds.
pub fn load_samples(cell: &Cell, dir: &Path, rounds: u32) -> Result<Samples> {
    let mut s = Samples::default();
    for r in cell.rounds_done(dir, rounds) {
        let p = cell.round_file(dir, r);
        let text = std::fs::read_to_string(&p)?;
        s.processes.extend(read_pyperf(&text).with_context(|| format!("reading {}", p.display()))?);
    }
    Ok(s)
}

fn load_counters(cell: &Cell, dir: &Path, rounds: u32) -> Option<Counters> {
    let mut c = Counters::default();
    for r in 0..rounds {
        let Ok(text) = std::fs::read_to_string(cell.stats_file(dir, r)) else { continue };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
            c.processes += 1;
            c.functions_compiled += v["functions_compiled"].as_f64().unwrap_or(0.0);
            c.functions_refused += v["functions_refused"].as_f64().unwrap_or(0.0);
            c.code_bytes += v["code_bytes"].as_f64().unwrap_or(0.0);
            c.deopts += v["deopts"].as_object().map(|m| m.values().filter_map(|x| x.as_f64()).sum()).unwrap_or(0.0);
            c.isa = v["isa"].as_str().unwrap_or("").to_string();
        }
    }
    if c.processes == 0 {
        return None;
    }
    let n = c.processes as f64;
    c.functions_compiled /= n;
    c.functions_refused /= n;
    c.code_bytes /= n;
    c.deopts /= n;
    Some(c)
}

fn is_emulated(hosts: &BTreeMap<String, HostRecord>, config: &Config, host: &str) -> bool {
    hosts.get(host).and_then(|h| h.probe.as_ref()).map(|p| p.emulated).unwrap_or(false)
        || matches!(config.hosts.get(host), Some(crate::config::HostConfig::Emulated { .. }))
}

pub fn summarize(dir: &Path) -> Result<Summary> {
    let manifest = Manifest::load(dir)?;
    let config = &manifest.config;
    let rounds = config.settings.rounds;
    let boot = Bootstrap { resamples: config.settings.resamples, confidence: config.settings.confidence, seed: config.settings.seed };
    let failures = matrix::load_failures(dir);
    let mut samples: BTreeMap<Cell, Samples> = BTreeMap::new();
    let mut cells = Vec::new();
    for cell in matrix::cells(config) {
        let s = load_samples(&cell, dir, rounds)?;
        let done = cell.rounds_done(dir, rounds).len() as u32;
        let st = stats::cell(&s, &boot);
        let status = if done == rounds { "complete" } else if done > 0 { "partial" } else { "failed" };
        let mut means: Vec<f64> = s.processes.iter().map(|p| p.iter().sum::<f64>() / p.len() as f64).collect();
        means.sort_by(f64::total_cmp);
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
            counters: load_counters(&cell, dir, rounds),
        });
        samples.insert(cell, s);
    }
    let comparisons = config.comparisons.iter().map(|c| compare(c, config, &manifest.hosts, &samples, &cells, &boot)).collect();
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
        warnings.push(format!("{} is {} ({}/{} rounds){}", c.id, c.status, c.rounds_done, rounds, c.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()));
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

fn selected<'a>(sel: &Selector, bench: &str, samples: &'a BTreeMap<Cell, Samples>) -> Option<(&'a Cell, &'a Samples)> {
    samples.iter().find(|(c, _)| c.host == sel.host && c.runtime == sel.runtime && c.knobs == sel.knobs && c.benchmark == bench)
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
    let emulated = is_emulated(hosts, config, &c.baseline.host) || is_emulated(hosts, config, &c.candidate.host);
    let cross_host = c.baseline.host != c.candidate.host;
    let benches: Vec<String> = c.benchmarks.clone().unwrap_or_else(|| config.benchmarks.clone());
    let mut warnings = Vec::new();
    let mut pairs = Vec::new();
    let mut per_benchmark = Vec::new();
    for b in &benches {
        let (base, cand) = (selected(&c.baseline, b, samples), selected(&c.candidate, b, samples));
        let ratio = match (base, cand) {
            // No speed figure at all across hosts when one is emulated.
            _ if cross_host && emulated => None,
            (Some((bc, bs)), Some((cc, cs))) => {
                for cell in [bc, cc] {
                    if let Some(st) = cells.iter().find(|r| r.id == cell.id()).and_then(|r| r.stats.as_ref()) {
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
        let (verdict, reason) = decide(ratio.as_ref(), &target, boot.confidence, cross_host && emulated);
        per_benchmark.push(BenchmarkRatio { benchmark: b.clone(), ratio, verdict, reason });
    }
    let geomean = if pairs.len() == benches.len() { stats::ratios_geomean(&pairs, boot) } else { None };
    let (verdict, mut reason) = if pairs.len() < benches.len() && !(cross_host && emulated) {
        (Verdict::Inconclusive, format!("{} of {} benchmarks have data on both sides", pairs.len(), benches.len()))
    } else {
        decide(geomean.as_ref(), &target, boot.confidence, cross_host && emulated)
    };
    if emulated && !cross_host {
        reason.push_str(" (emulated host: a within-host ratio under qemu, not a hardware speed measurement)");
    }
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
    }
}

fn decide(r: Option<&Ratio>, target: &Target, confidence: f64, emulated_cross_host: bool) -> (Verdict, String) {
    if emulated_cross_host {
        return (
            Verdict::NotApplicable,
            "an emulated host's timings never enter a cross-host speed verdict; see its within-host ratios and counts".into(),
        );
    }
    match r {
        Some(r) => stats::verdict(r, target, confidence),
        None => (Verdict::Inconclusive, "no data on one side (failed or missing cells)".into()),
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
                    .filter_map(|c| c.stats.as_ref().map(|s| SweepPoint { knobs: c.knobs.clone(), mean: s.mean, ci_low: s.ci_low, ci_high: s.ci_high }))
                    .collect();
                if !points.is_empty() {
                    out.push(Sweep { host: host.clone(), runtime: rname.clone(), benchmark: b.clone(), points });
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
    match s.comparisons.iter().find(|c| c.baseline.host != c.candidate.host) {
        Some(c) => format!("summary_{}_vs_{}_{stamp}.json", c.baseline.host, c.candidate.host),
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
        Some(r) => format!("{:.3}x [{:.3}, {:.3}] p={:.3}", r.estimate, r.ci_low, r.ci_high, r.p_value),
        None => "-".into(),
    }
}

/// The markdown report.
pub fn markdown(s: &Summary) -> String {
    let pct = (s.settings.confidence * 100.0).round();
    let mut m = String::new();
    m.push_str(&format!("# ferrojit-lab report ({})\n\n", s.run_dir));
    m.push_str("## Hosts\n\n| host | arch | cpu | cores | emulated | governor | turbo |\n|---|---|---|---|---|---|---|\n");
    for (name, h) in &s.hosts {
        match &h.probe {
            Some(p) => m.push_str(&format!("| {name} | {} | {} | {} | {} | {} | {} |\n", p.arch, p.cpu.trim(), p.cores, if p.emulated { "yes" } else { "no" }, p.governor, p.turbo)),
            None => m.push_str(&format!("| {name} | unreachable | {} | | | | |\n", h.error.clone().unwrap_or_default())),
        }
    }
    m.push_str(&format!("\n## Cells\n\n| cell | status | processes x values | mean | median | {pct}% interval of the mean | cv | ferrojit counters |\n|---|---|---|---|---|---|---|---|\n"));
    for c in &s.cells {
        let counters = c
            .counters
            .as_ref()
            .map(|k| format!("{:.0} compiled, {:.0} code bytes, {:.0} deopts ({})", k.functions_compiled, k.code_bytes, k.deopts, k.isa))
            .unwrap_or_default();
        match &c.stats {
            Some(st) => m.push_str(&format!(
                "| {}{} | {} | {} x {} | {} | {} | [{}, {}] | {:.1}% | {} |\n",
                c.id,
                if c.emulated { " (emulated)" } else { "" },
                c.status,
                st.processes,
                st.values / st.processes.max(1),
                secs(st.mean),
                secs(st.median),
                secs(st.ci_low),
                secs(st.ci_high),
                st.cv * 100.0,
                counters
            )),
            None => m.push_str(&format!("| {} | {} | - | - | - | - | - | {} |\n", c.id, c.status, c.error.clone().unwrap_or_default().replace('\n', " "))),
        }
    }
    m.push_str(&format!("\n## Comparisons (ratio = baseline time / candidate time; {pct}% bootstrap intervals over processes)\n\n| comparison | benchmark | ratio | target | verdict |\n|---|---|---|---|---|\n"));
    for c in &s.comparisons {
        for b in &c.per_benchmark {
            m.push_str(&format!("| {} | {} | {} | {} | {} |\n", c.name, b.benchmark, fmt_ratio(&b.ratio), c.target, b.verdict));
        }
        m.push_str(&format!("| **{}** | geometric mean | {} | {} | **{}** |\n", c.name, fmt_ratio(&c.geomean), c.target, c.verdict));
    }
    for c in &s.comparisons {
        m.push_str(&format!("\n- **{}**: {} — {}\n", c.name, c.verdict, c.reason));
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
