//! `run`: the whole matrix, host by host. Each host is probed and its runtimes set up (the same
//! idempotent set-up as `bootstrap`), then its cells run in rounds: every round gives each cell
//! a share of its processes, in an order rotated per round, so that drift on the host (thermal,
//! background load) hits every runtime alike. Finished rounds are written at once; a host that
//! drops marks its remaining cells failed and the run goes on with the other hosts; `--resume`
//! runs only the rounds that have no file yet.

use crate::matrix::{self, save_failures, write_atomic, Cell, Manifest};
use crate::session::{host_dropped, Session};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::Path;

/// What a run did.
pub struct RunOutcome {
    pub rounds_run: usize,
    pub failed_cells: BTreeMap<String, String>,
}

/// Processes per round for each round index (the remainder goes to the first rounds).
pub fn processes_per_round(processes: u32, rounds: u32) -> Vec<u32> {
    (0..rounds).map(|r| processes / rounds + u32::from(r < processes % rounds)).collect()
}

pub fn run(session: &Session, dir: &Path, show_progress: bool) -> Result<RunOutcome> {
    let config = &session.config;
    let mut settings = config.settings.clone();
    if settings.rigorous {
        settings.processes *= 2;
    }
    let per_round = processes_per_round(settings.processes, settings.rounds);
    let cells = matrix::cells(config);
    let pending: usize = cells.iter().map(|c| settings.rounds as usize - c.rounds_done(dir, settings.rounds).len()).sum();
    let bar = if show_progress { ProgressBar::new(pending as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rounds, ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut failures = matrix::load_failures(dir);
    let mut rounds_run = 0;
    for (host, reached) in &session.hosts {
        let host_cells: Vec<&Cell> = cells.iter().filter(|c| &c.host == host).collect();
        if let Err(e) = &reached.probe {
            fail_all(&host_cells, &format!("host {host} unreachable: {e:#}"), &mut failures, dir, settings.rounds, &bar);
            continue;
        }
        // Set up every runtime this host needs; a runtime that cannot be set up fails its cells.
        let mut ready = BTreeMap::new();
        for rt in session.runtimes_on(host) {
            bar.set_message(format!("setting up {rt} on {host}"));
            let r = session.bootstrap_runtime(host, &rt).and_then(|_| session.recipe(host, &rt));
            if let Err(e) = &r {
                if host_dropped(e) {
                    break;
                }
            }
            ready.insert(rt, r);
        }
        let mut scripts = BTreeMap::new();
        let mut dropped: Option<String> = None;
        for round in 0..settings.rounds {
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
                        failures.insert(cell.id(), format!("runtime {} is not usable on {host}: {e:#}", cell.runtime));
                        bar.inc(1);
                        continue;
                    }
                    None => {
                        failures.insert(cell.id(), format!("host {host} dropped while setting up {}", cell.runtime));
                        bar.inc(1);
                        continue;
                    }
                };
                bar.set_message(format!("{} round {}/{}", cell.id(), round + 1, settings.rounds));
                let key = (cell.runtime.clone(), cell.benchmark.clone());
                if !scripts.contains_key(&key) {
                    match session.benchmark_script(host, recipe, &cell.benchmark) {
                        Ok(s) => {
                            scripts.insert(key.clone(), s);
                        }
                        Err(e) => {
                            if host_dropped(&e) {
                                dropped = Some(format!("{e:#}"));
                                failures.insert(cell.id(), format!("{e:#}"));
                            } else {
                                failures.insert(cell.id(), format!("{e:#}"));
                            }
                            bar.inc(1);
                            continue;
                        }
                    }
                }
                let tag = format!("{}-r{round}-{}", std::process::id(), k);
                match session.run_round(cell, &scripts[&key], recipe, per_round[round as usize], &tag) {
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
        if let Some(why) = dropped {
            bar.println(format!("lab: host {host} dropped; its unfinished cells are marked failed ({why}); `run --resume` finishes them"));
        }
    }
    bar.finish_and_clear();
    // Cells whose rounds are all present are not failures, whatever an earlier attempt said.
    failures.retain(|id, _| cells.iter().any(|c| &c.id() == id && c.rounds_done(dir, settings.rounds).len() < settings.rounds as usize));
    save_failures(dir, &failures)?;
    Ok(RunOutcome { rounds_run, failed_cells: failures })
}

fn fail_all(cells: &[&Cell], why: &str, failures: &mut BTreeMap<String, String>, dir: &Path, rounds: u32, bar: &ProgressBar) {
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
    let hosts = session.hosts.iter().map(|(n, r)| (n.clone(), r.record())).collect();
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
