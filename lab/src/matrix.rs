//! The run matrix: cells (host x runtime x knob setting x benchmark), their names and folders,
//! and the run folder's manifest.
//!
//! A run folder holds `manifest.json` (the configuration and host probes, written first),
//! `raw/<host>/<runtime>[,K=V...]/<benchmark>/round-<i>.json` (pyperf's own JSON for each round;
//! a file exists only once its round finished), an optional `.stats.jsonl` beside each round for
//! ferrojit's counters, `failures.json` (the last error of each failed cell) and, with pinned
//! loops, `loops.json` (the loops calibrated for each host and benchmark).

use crate::config::Config;
use crate::host::Probe;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cell {
    pub host: String,
    pub runtime: String,
    pub knobs: BTreeMap<String, String>,
    pub benchmark: String,
}

impl Cell {
    /// The runtime column with its knob setting, e.g. `ferrojit,FERROJIT_THRESHOLD=0`.
    pub fn column(&self) -> String {
        let mut s = self.runtime.clone();
        for (k, v) in &self.knobs {
            s.push_str(&format!(",{k}={v}"));
        }
        s
    }

    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.host, self.column(), self.bench_name())
    }

    /// A benchmark's short name: pyperformance's name, or a script's file name.
    pub fn bench_name(&self) -> String {
        if self.benchmark.ends_with(".py") {
            Path::new(&self.benchmark)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| self.benchmark.clone())
        } else {
            self.benchmark.clone()
        }
    }

    /// A name safe as a folder for the benchmark (scripts are named by their file stem).
    pub fn bench_dir(&self) -> String {
        Path::new(&self.benchmark)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.benchmark.clone())
    }

    pub fn dir(&self, run: &Path) -> PathBuf {
        run.join("raw")
            .join(&self.host)
            .join(sanitize(&self.column()))
            .join(sanitize(&self.bench_dir()))
    }

    pub fn round_file(&self, run: &Path, round: u32) -> PathBuf {
        self.dir(run).join(format!("round-{round}.json"))
    }

    pub fn stats_file(&self, run: &Path, round: u32) -> PathBuf {
        self.dir(run).join(format!("round-{round}.stats.jsonl"))
    }

    pub fn rounds_done(&self, run: &Path, rounds: u32) -> Vec<u32> {
        (0..rounds)
            .filter(|r| self.round_file(run, *r).exists())
            .collect()
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.,=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Every cell of a configuration, in a stable order.
pub fn cells(config: &Config) -> Vec<Cell> {
    let mut out = Vec::new();
    for host in config.hosts.keys() {
        for (rname, rt) in &config.runtimes {
            if let Some(hosts) = &rt.hosts {
                if !hosts.contains(host) {
                    continue;
                }
            }
            for knobs in knob_settings(&rt.knobs) {
                for b in &config.benchmarks {
                    out.push(Cell {
                        host: host.clone(),
                        runtime: rname.clone(),
                        knobs: knobs.clone(),
                        benchmark: b.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The cartesian product of a knob grid (one empty setting when there are no knobs).
pub fn knob_settings(grid: &BTreeMap<String, Vec<String>>) -> Vec<BTreeMap<String, String>> {
    let mut all = vec![BTreeMap::new()];
    for (k, values) in grid {
        all = all
            .into_iter()
            .flat_map(|base| {
                values.iter().map(move |v| {
                    let mut m = base.clone();
                    m.insert(k.clone(), v.clone());
                    m
                })
            })
            .collect();
    }
    all
}

/// What a run folder records about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub created: String,
    pub config: Config,
    /// Each host's probe, or why it could not be probed.
    pub hosts: BTreeMap<String, HostRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRecord {
    pub probe: Option<Probe>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

impl Manifest {
    pub fn path(run: &Path) -> PathBuf {
        run.join("manifest.json")
    }

    pub fn load(run: &Path) -> Result<Manifest> {
        let p = Manifest::path(run);
        let text = std::fs::read_to_string(&p).with_context(|| {
            format!(
                "{} is not a lab run folder (no manifest.json)",
                run.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", p.display()))
    }

    pub fn save(&self, run: &Path) -> Result<()> {
        std::fs::create_dir_all(run)?;
        write_atomic(&Manifest::path(run), &serde_json::to_string_pretty(self)?)
    }
}

/// The last failure of each cell that failed.
pub fn load_failures(run: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(run.join("failures.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

pub fn save_failures(run: &Path, failures: &BTreeMap<String, String>) -> Result<()> {
    write_atomic(
        &run.join("failures.json"),
        &serde_json::to_string_pretty(failures)?,
    )
}

/// Loops calibrated per host and benchmark (`loops.json`), so that a resumed run keeps them.
pub type PinnedLoops = BTreeMap<String, BTreeMap<String, u64>>;

pub fn load_loops(run: &Path) -> PinnedLoops {
    std::fs::read_to_string(run.join("loops.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

pub fn save_loops(run: &Path, loops: &PinnedLoops) -> Result<()> {
    write_atomic(
        &run.join("loops.json"),
        &serde_json::to_string_pretty(loops)?,
    )
}

/// Writes through a temporary file and a rename, so that a killed run never leaves half a file
/// where a finished one is expected.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knob_grids_expand_to_every_combination() {
        let mut g = BTreeMap::new();
        g.insert("A".to_string(), vec!["0".to_string(), "1".to_string()]);
        g.insert(
            "B".to_string(),
            vec!["x".to_string(), "y".to_string(), "z".to_string()],
        );
        let s = knob_settings(&g);
        assert_eq!(s.len(), 6);
        assert!(s.contains(
            &[
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "z".to_string())
            ]
            .into_iter()
            .collect()
        ));
        assert_eq!(knob_settings(&BTreeMap::new()), vec![BTreeMap::new()]);
    }

    #[test]
    fn cells_cover_hosts_runtimes_knobs_and_benchmarks() {
        let config = Config::parse(
            r#"
            benchmarks = ["richards", "bench/tiny.py"]
            [hosts.a]
            kind = "local"
            [hosts.b]
            kind = "local"
            [runtimes.cpython]
            kind = "cpython"
            [runtimes.ferrojit]
            kind = "ferrojit"
            hosts = ["b"]
            knobs = { FERROJIT_THRESHOLD = ["0", "50"] }
            "#,
        )
        .unwrap();
        let c = cells(&config);
        assert_eq!(c.len(), 2 * 2 + 2 * 2);
        let f = c
            .iter()
            .find(|c| {
                c.runtime == "ferrojit"
                    && c.benchmark == "bench/tiny.py"
                    && c.knobs["FERROJIT_THRESHOLD"] == "50"
            })
            .unwrap();
        assert_eq!(f.id(), "b/ferrojit,FERROJIT_THRESHOLD=50/tiny.py");
        assert!(f
            .dir(Path::new("/r"))
            .ends_with("raw/b/ferrojit,FERROJIT_THRESHOLD=50/tiny"));
    }
}
