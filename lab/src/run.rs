//! `run`: the whole matrix, host by host. Each host is probed and its runtimes set up (the same
//! idempotent set-up as `bootstrap`), then its cells run in rounds: every round gives each cell
//! a share of its processes, in an order rotated per round, so that drift on the host (thermal,
//! background load) hits every runtime alike. Finished rounds are written at once; a host that
//! drops marks its remaining cells failed and the run goes on with the other hosts; `--resume`
//! runs only the rounds that have no file yet. With `pin_loops`, each benchmark's loops are
//! calibrated once per host before its rounds, and every runtime runs with them.

use crate::config::RuntimeKind;
use crate::counts;
use crate::matrix::{self, save_failures, save_loops, write_atomic, Cell, Manifest};
use crate::runtime::Recipe;
use crate::session::{host_dropped, Session};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Benchmark scripts found on a host, by (runtime, benchmark).
type Scripts = BTreeMap<(String, String), String>;

/// What a run did.
pub struct RunOutcome {
    pub rounds_run: usize,
    pub failed_cells: BTreeMap<String, String>,
}

/// Processes per round for each round index (the remainder goes to the first rounds).
pub fn processes_per_round(processes: u32, rounds: u32) -> Vec<u32> {
    (0..rounds)
        .map(|r| processes / rounds + u32::from(r < processes % rounds))
        .collect()
}

pub fn run(session: &Session, dir: &Path, show_progress: bool) -> Result<RunOutcome> {
    let config = &session.config;
    let mut settings = config.settings.clone();
    // Rounds as configured (the summary reads that many), before rigorous mode doubles the
    // processes spread over them.
    let rounds = settings.rounds();
    if settings.rigorous {
        settings.processes *= 2;
    }
    let per_round = processes_per_round(settings.processes, rounds);
    let cells = matrix::cells(config);
    let pending: usize = cells
        .iter()
        .map(|c| rounds as usize - c.rounds_done(dir, rounds).len())
        .sum();
    let bar = if show_progress {
        ProgressBar::new(pending as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rounds, ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut failures = matrix::load_failures(dir);
    let mut rounds_run = 0;
    let mut plugin = None;
    for (host, reached) in &session.hosts {
        let host_cells: Vec<&Cell> = cells.iter().filter(|c| &c.host == host).collect();
        if let Err(e) = &reached.probe {
            fail_all(
                &host_cells,
                &format!("host {host} unreachable: {e:#}"),
                &mut failures,
                dir,
                rounds,
                &bar,
            );
            continue;
        }
        // Set up every runtime this host needs; a runtime that cannot be set up fails its cells.
        let mut ready = BTreeMap::new();
        for rt in session.runtimes_on(host) {
            bar.set_message(format!("setting up {rt} on {host}"));
            let r = session
                .bootstrap_runtime(host, &rt)
                .and_then(|_| session.recipe(host, &rt));
            if let Err(e) = &r {
                if host_dropped(e) {
                    break;
                }
            }
            ready.insert(rt, r);
        }
        let mut scripts = BTreeMap::new();
        let mut dropped: Option<String> = None;
        let mut loops = BTreeMap::new();
        if settings.pin_loops || settings.count_instructions {
            (loops, dropped) = pin_loops(
                session,
                host,
                &host_cells,
                &ready,
                &mut scripts,
                dir,
                rounds,
                &bar,
            )?;
        }
        for round in 0..rounds {
            let n = host_cells.len().max(1);
            for k in 0..host_cells.len() {
                let cell = host_cells[(k + round as usize) % n];
                if cell.round_file(dir, round).exists() {
                    continue;
                }
                if let Some(why) = &dropped {
                    failures.insert(cell.id(), why.clone());
                    bar.inc(1);
                    continue;
                }
                let recipe = match ready.get(&cell.runtime) {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        failures.insert(
                            cell.id(),
                            format!("runtime {} is not usable on {host}: {e:#}", cell.runtime),
                        );
                        bar.inc(1);
                        continue;
                    }
                    None => {
                        failures.insert(
                            cell.id(),
                            format!("host {host} dropped while setting up {}", cell.runtime),
                        );
                        bar.inc(1);
                        continue;
                    }
                };
                bar.set_message(format!("{} round {}/{}", cell.id(), round + 1, rounds));
                let script = match script_for(session, host, recipe, &cell.benchmark, &mut scripts)
                {
                    Ok(s) => s,
                    Err(e) => {
                        if host_dropped(&e) {
                            dropped = Some(format!("{e:#}"));
                        }
                        failures.insert(cell.id(), format!("{e:#}"));
                        bar.inc(1);
                        continue;
                    }
                };
                let tag = format!("{}-r{round}-{}", std::process::id(), k);
                let pinned = (loops.get(&cell.benchmark).copied()).filter(|_| settings.pin_loops);
                match session.run_round(
                    cell,
                    &script,
                    recipe,
                    per_round[round as usize],
                    pinned,
                    &tag,
                ) {
                    Ok((json, stats)) => {
                        if !stats.is_empty() {
                            write_atomic(&cell.stats_file(dir, round), &stats)?;
                        }
                        write_atomic(&cell.round_file(dir, round), &json)?;
                        failures.remove(&cell.id());
                        rounds_run += 1;
                    }
                    Err(e) => {
                        if host_dropped(&e) {
                            dropped = Some(format!("{e:#}"));
                        }
                        failures.insert(cell.id(), format!("{e:#}"));
                    }
                }
                save_failures(dir, &failures)?;
                bar.inc(1);
            }
        }
        if settings.count_instructions && dropped.is_none() {
            let counting = Counting {
                session,
                host,
                ready: &ready,
                loops: &loops,
                warmups: settings.warmups,
                dir,
                bar: &bar,
            };
            dropped = counting.count_cells(&host_cells, &mut scripts, &mut plugin)?;
        }
        if let Some(why) = dropped {
            bar.println(format!("lab: host {host} dropped; its unfinished cells are marked failed ({why}); `run --resume` finishes them"));
        }
    }
    bar.finish_and_clear();
    // Cells whose rounds are all present are not failures, whatever an earlier attempt said.
    failures.retain(|id, _| {
        cells
            .iter()
            .any(|c| &c.id() == id && c.rounds_done(dir, rounds).len() < rounds as usize)
    });
    save_failures(dir, &failures)?;
    Ok(RunOutcome {
        rounds_run,
        failed_cells: failures,
    })
}

/// Counting the instructions of a host's cells (setting `count_instructions`), after its
/// rounds.
struct Counting<'a> {
    session: &'a Session,
    host: &'a str,
    ready: &'a BTreeMap<String, Result<Recipe>>,
    loops: &'a BTreeMap<String, u64>,
    warmups: u32,
    dir: &'a Path,
    bar: &'a ProgressBar,
}

impl Counting<'_> {
    /// Counts each cell that has no counts yet; a cell that cannot be counted gets the reason
    /// in its counts file. `plugin` is built on first use. Returns why the host dropped, if it
    /// did.
    fn count_cells(
        &self,
        cells: &[&Cell],
        scripts: &mut Scripts,
        plugin: &mut Option<Result<std::path::PathBuf, String>>,
    ) -> Result<Option<String>> {
        let reached = &self.session.hosts[self.host];
        let Ok(probe) = &reached.probe else {
            return Ok(None);
        };
        for (k, cell) in cells.iter().enumerate() {
            if matches!(
                counts::load(cell, self.dir),
                Some(counts::Outcome::Counted(_))
            ) {
                continue;
            }
            self.bar
                .set_message(format!("counting the instructions of {}", cell.id()));
            let plugin =
                plugin.get_or_insert_with(|| counts::plugin().map_err(|e| format!("{e:#}")));
            let outcome = match self.count_one(cell, &probe.arch, plugin, scripts, k) {
                Ok(c) => counts::Outcome::Counted(c),
                Err(e) if host_dropped(&e) => return Ok(Some(format!("{e:#}"))),
                Err(e) => counts::Outcome::Error(format!("{e:#}")),
            };
            counts::save(cell, self.dir, &outcome)?;
        }
        Ok(None)
    }

    fn count_one(
        &self,
        cell: &Cell,
        arch: &str,
        plugin: &Result<std::path::PathBuf, String>,
        scripts: &mut Scripts,
        k: usize,
    ) -> Result<counts::CellCounts> {
        let plugin = plugin.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let recipe = match self.ready.get(&cell.runtime) {
            Some(Ok(r)) => r,
            Some(Err(e)) => anyhow::bail!("runtime {} is not usable: {e:#}", cell.runtime),
            None => anyhow::bail!("runtime {} was not set up", cell.runtime),
        };
        let Some(&loops) = self.loops.get(&cell.benchmark) else {
            anyhow::bail!("the loops of {} could not be calibrated", cell.benchmark);
        };
        let script = script_for(self.session, self.host, recipe, &cell.benchmark, scripts)?;
        let tag = format!("{}-count-{k}", std::process::id());
        counts::count(&counts::Job {
            host: &self.session.hosts[self.host].host,
            arch,
            cell,
            recipe,
            script: &script,
            loops,
            warmups: self.warmups,
            plugin,
            tag: &tag,
        })
    }
}

/// The script of a benchmark for a runtime on a host, looked up once per run.
fn script_for(
    session: &Session,
    host: &str,
    recipe: &Recipe,
    benchmark: &str,
    scripts: &mut Scripts,
) -> Result<String> {
    let key = (recipe.runtime.clone(), benchmark.to_string());
    if let Some(s) = scripts.get(&key) {
        return Ok(s.clone());
    }
    let s = session.benchmark_script(host, recipe, benchmark)?;
    scripts.insert(key, s.clone());
    Ok(s)
}

/// The runtime that calibrates a host's loops: its first usable runtime of kind cpython, else
/// its first usable runtime.
fn calibrating_runtime(ready: &BTreeMap<String, Result<Recipe>>) -> Option<&Recipe> {
    let usable = || ready.values().filter_map(|r| r.as_ref().ok());
    usable()
        .find(|r| r.kind == RuntimeKind::Cpython)
        .or_else(|| usable().next())
}

/// Pinned loops for the benchmarks of a host that still have rounds to run: the ones an earlier
/// attempt calibrated (`loops.json`), else calibrated now, once, with the host's CPython. A
/// benchmark whose calibration fails is left to pyperf's calibration per runtime and round, with a
/// warning. Also returns why the host dropped, if it did.
#[allow(clippy::too_many_arguments)]
fn pin_loops(
    session: &Session,
    host: &str,
    cells: &[&Cell],
    ready: &BTreeMap<String, Result<Recipe>>,
    scripts: &mut Scripts,
    dir: &Path,
    rounds: u32,
    bar: &ProgressBar,
) -> Result<(BTreeMap<String, u64>, Option<String>)> {
    let mut all = matrix::load_loops(dir);
    let mut pinned = all.get(host).cloned().unwrap_or_default();
    let Some(recipe) = calibrating_runtime(ready) else {
        return Ok((pinned, None));
    };
    let pending: BTreeSet<&String> = cells
        .iter()
        .filter(|c| c.rounds_done(dir, rounds).len() < rounds as usize)
        .map(|c| &c.benchmark)
        .collect();
    for (i, b) in pending.into_iter().enumerate() {
        if pinned.contains_key(b) {
            continue;
        }
        bar.set_message(format!(
            "calibrating the loops of {b} on {host} with {}",
            recipe.runtime
        ));
        let tag = format!("{}-loops-{i}", std::process::id());
        match script_for(session, host, recipe, b, scripts)
            .and_then(|s| session.calibrate_loops(host, recipe, &s, &tag))
        {
            Ok(n) => {
                pinned.insert(b.clone(), n);
                all.insert(host.to_string(), pinned.clone());
                save_loops(dir, &all)?;
            }
            Err(e) if host_dropped(&e) => return Ok((pinned, Some(format!("{e:#}")))),
            Err(e) => bar.println(format!(
                "lab: warning: {e:#}; the runtimes on {host} calibrate their own loops for {b}"
            )),
        }
    }
    Ok((pinned, None))
}

fn fail_all(
    cells: &[&Cell],
    why: &str,
    failures: &mut BTreeMap<String, String>,
    dir: &Path,
    rounds: u32,
    bar: &ProgressBar,
) {
    for c in cells {
        let missing = rounds as usize - c.rounds_done(dir, rounds).len();
        if missing > 0 {
            failures.insert(c.id(), why.to_string());
            bar.inc(missing as u64);
        }
    }
}

/// Writes the manifest for a new run (or checks the one of a resumed run).
pub fn write_manifest(session: &Session, dir: &Path) -> Result<Manifest> {
    let hosts = session
        .hosts
        .iter()
        .map(|(n, r)| (n.clone(), r.record()))
        .collect();
    let m = Manifest {
        schema_version: 1,
        created: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        config: session.config.clone(),
        hosts,
    };
    m.save(dir)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_spread_over_rounds() {
        assert_eq!(processes_per_round(10, 2), vec![5, 5]);
        assert_eq!(processes_per_round(7, 3), vec![3, 2, 2]);
        assert_eq!(processes_per_round(1, 1), vec![1]);
    }
}
