//! A session with the configured hosts: probing them (`check`), setting up runtimes on them
//! (`bootstrap`), and running one round of one cell through pyperf.

use crate::config::{Config, HostConfig};
use crate::host::{is_unreachable, tail, Host, Probe};
use crate::matrix::{Cell, HostRecord};
use crate::runtime::{self, recipe, shell_words, Recipe};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A host and what probing it found.
pub struct Reached {
    pub host: Host,
    pub probe: Result<Probe>,
}

impl Reached {
    pub fn record(&self) -> HostRecord {
        match &self.probe {
            Ok(p) => HostRecord {
                probe: Some(p.clone()),
                error: None,
                warnings: p.warnings(),
            },
            Err(e) => HostRecord {
                probe: None,
                error: Some(format!("{e:#}")),
                warnings: vec![],
            },
        }
    }
}

pub struct Session {
    pub config: Config,
    pub hosts: BTreeMap<String, Reached>,
    /// ISAs ferrojit was built for in this session.
    built: std::cell::RefCell<std::collections::BTreeSet<String>>,
    /// Holds the ssh control sockets; removed with the session.
    _control_dir: tempfile::TempDir,
}

impl Session {
    /// Reaches and probes every host; an unreachable host is recorded, not fatal.
    pub fn open(config: Config) -> Result<Session> {
        // Short path: ssh control sockets must fit in a sun_path.
        let control_dir = tempfile::Builder::new()
            .prefix("fjlab")
            .tempdir_in("/tmp")?;
        let mut hosts = BTreeMap::new();
        for (name, hc) in &config.hosts {
            let host = Host::new(name, hc, config.workdir(name), control_dir.path());
            let probe = host.probe();
            hosts.insert(name.clone(), Reached { host, probe });
        }
        Ok(Session {
            config,
            hosts,
            built: Default::default(),
            _control_dir: control_dir,
        })
    }

    /// The recipe of a runtime on a reached host.
    pub fn recipe(&self, host: &str, runtime: &str) -> Result<Recipe> {
        let r = &self.hosts[host];
        let probe = r.probe.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        recipe(
            runtime,
            &self.config.runtimes[runtime],
            &r.host,
            &probe.arch,
        )
    }

    /// Runtimes configured for a host.
    pub fn runtimes_on(&self, host: &str) -> Vec<String> {
        self.config
            .runtimes
            .iter()
            .filter(|(_, rt)| {
                rt.hosts
                    .as_ref()
                    .map(|h| h.iter().any(|x| x == host))
                    .unwrap_or(true)
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// What a runtime is on a host: `key=value` facts and the missing pieces.
    pub fn check_runtime(
        &self,
        host: &str,
        runtime: &str,
    ) -> Result<(BTreeMap<String, String>, Vec<String>)> {
        let recipe = self.recipe(host, runtime)?;
        let out = self.hosts[host].host.sh_ok(&recipe.check_script())?;
        let mut facts = BTreeMap::new();
        let mut missing = Vec::new();
        for line in out.lines() {
            if let Some((k, v)) = line.split_once('=') {
                if k == "missing" {
                    missing.push(v.to_string());
                } else {
                    facts.insert(k.to_string(), v.to_string());
                }
            }
        }
        if let Some((local, _)) = &recipe.upload {
            if !runtime::has_wheel(local) {
                missing.push(format!(
                    "a ferrojit wheel in {} (bootstrap runs cargo xtask wheel)",
                    local.display()
                ));
            }
        }
        Ok((facts, missing))
    }

    /// Creates or repairs a runtime's environment on a host; a no-op when it is complete.
    pub fn bootstrap_runtime(&self, host: &str, runtime: &str) -> Result<()> {
        let recipe = self.recipe(host, runtime)?;
        let h = &self.hosts[host].host;
        if let Some((local, dest)) = &recipe.upload {
            self.ensure_built(local)?;
            h.upload_dir(local, dest)?;
        }
        if !recipe.setup.is_empty() {
            h.sh_ok(&format!(
                "mkdir -p \"{}\"\n{}",
                h.workdir,
                recipe.setup.join("\n")
            ))
            .with_context(|| format!("setting up {runtime} on {host}"))?;
        }
        let (_, missing) = self.check_runtime(host, runtime)?;
        if !missing.is_empty() {
            bail!(
                "{runtime} on {host} is still missing after set-up: {}",
                missing.join("; ")
            );
        }
        Ok(())
    }

    /// Builds ferrojit for the ISA of `pkg` once per session (cargo makes this a quick no-op when
    /// it is up to date), so that a run never measures a stale build. Without cargo, an existing
    /// build is used as it is.
    fn ensure_built(&self, pkg: &Path) -> Result<()> {
        let isa = pkg.file_name().unwrap().to_string_lossy().into_owned();
        if self.built.borrow().contains(&isa) {
            return Ok(());
        }
        match build_ferrojit(pkg) {
            Ok(()) => {}
            Err(e) if runtime::has_wheel(pkg) => eprintln!(
                "lab: warning: using the existing wheel in {} ({e:#})",
                pkg.display()
            ),
            Err(e) => return Err(e),
        }
        self.built.borrow_mut().insert(isa);
        Ok(())
    }

    /// Where a benchmark's script is on a host: pyperformance's own copy for a benchmark name,
    /// or the given script, copied there.
    pub fn benchmark_script(&self, host: &str, recipe: &Recipe, benchmark: &str) -> Result<String> {
        let h = &self.hosts[host].host;
        if benchmark.ends_with(".py") {
            let local = Path::new(benchmark);
            if !local.is_file() {
                bail!("benchmark script {benchmark} does not exist");
            }
            let stem = local.file_stem().unwrap().to_string_lossy().into_owned();
            let staging = tempfile::tempdir()?;
            std::fs::copy(local, staging.path().join(local.file_name().unwrap()))?;
            let dest = format!("{}/scripts/{stem}", h.workdir);
            h.upload_dir(staging.path(), &dest)?;
            return Ok(format!(
                "{dest}/{}",
                local.file_name().unwrap().to_string_lossy()
            ));
        }
        let probe = format!(
            "{}{} -c 'import os, sys, pyperformance\n\
             p = os.path.join(os.path.dirname(pyperformance.__file__), \"data-files\", \"benchmarks\", \"bm_\" + sys.argv[1], \"run_benchmark.py\")\n\
             print(p if os.path.exists(p) else \"\")' '{benchmark}'",
            recipe.exports(),
            shell_words(&recipe.argv)
        );
        let path = h.sh_ok(&probe)?.trim().to_string();
        if path.is_empty() {
            bail!("pyperformance on {host} has no benchmark named {benchmark:?}");
        }
        Ok(path)
    }

    /// Calibrates pyperf's loops for a benchmark on a host: one pyperf worker process with
    /// `--calibrate-loops` (the same calibration pyperf's own first process does), run by
    /// `recipe`. A script with several benchmarks gets the smallest of their loops, so that
    /// none of them takes longer per value than calibrated.
    pub fn calibrate_loops(
        &self,
        host: &str,
        recipe: &Recipe,
        script: &str,
        tag: &str,
    ) -> Result<u64> {
        let h = &self.hosts[host].host;
        let scratch = format!("{}/runs", h.workdir);
        let out = format!("{scratch}/{tag}.calibration.json");
        let min_time = self
            .config
            .settings
            .min_time
            .map(|t| format!(" --min-time={t}"))
            .unwrap_or_default();
        let line = format!(
            "mkdir -p \"{scratch}\"\nrm -f \"{out}\"\n{}{} \"{script}\" --worker --calibrate-loops --quiet -o \"{out}\"{min_time} >/dev/null\n",
            recipe.exports(),
            shell_words(&recipe.argv)
        );
        let o = h.sh(&line)?;
        if o.code != 0 {
            bail!(
                "calibrating the loops of {script} on {host} failed ({}): {}",
                o.code,
                tail(&o.stderr, 1500)
            );
        }
        let json = h.read_file(&out)?;
        h.sh(&format!("rm -f \"{out}\""))?;
        crate::report::calibrated_loops(&json)
            .with_context(|| format!("calibrating the loops of {script} on {host}"))
    }

    /// Runs one round of a cell: `processes` pyperf workers (with `loops` per value when the
    /// loops are pinned, else pyperf calibrates them), and returns pyperf's JSON and ferrojit's
    /// stats lines (empty for other runtimes).
    pub fn run_round(
        &self,
        cell: &Cell,
        script: &str,
        recipe: &Recipe,
        processes: u32,
        loops: Option<u64>,
        round_tag: &str,
    ) -> Result<(String, String)> {
        let h = &self.hosts[&cell.host].host;
        let s = &self.config.settings;
        let scratch = format!("{}/runs", h.workdir);
        let out = format!("{scratch}/{round_tag}.json");
        let stats = format!("{scratch}/{round_tag}.stats.jsonl");
        let mut env = recipe.env.clone();
        env.extend(cell.knobs.clone());
        if recipe.kind == crate::config::RuntimeKind::Ferrojit {
            env.insert("FERROJIT_STATS".into(), stats.clone());
        }
        let mut inherit: Vec<&str> = env
            .keys()
            .map(|k| k.as_str())
            .filter(|k| *k != "PYTHONPATH")
            .collect();
        if h.emulated() {
            inherit.push("QEMU_LD_PREFIX");
        }
        let mut pyperf = format!(
            "--processes {processes} --values {} --warmups {} --quiet -o \"{out}\"",
            s.values, s.warmups
        );
        if let Some(t) = s.min_time {
            pyperf.push_str(&format!(" --min-time={t}"));
        }
        if let Some(n) = loops {
            pyperf.push_str(&format!(" --loops={n}"));
        }
        if !inherit.is_empty() {
            pyperf.push_str(&format!(" --inherit-environ={}", inherit.join(",")));
        }
        if s.rigorous {
            if let Ok(p) = &self.hosts[&cell.host].probe {
                pyperf.push_str(&format!(" --affinity={}", pin_cpu(p)));
            }
        }
        let exports: String = env
            .iter()
            .map(|(k, v)| format!("export {k}=\"{v}\"\n"))
            .collect();
        let script_line = format!(
            "mkdir -p \"{scratch}\"\nrm -f \"{out}\" \"{stats}\"\n{exports}{} \"{script}\" {pyperf}\n",
            shell_words(&recipe.argv)
        );
        let o = h.sh(&script_line)?;
        if o.code != 0 {
            bail!(
                "{} failed on {} ({}): {}",
                cell.id(),
                cell.host,
                o.code,
                tail(&format!("{}\n{}", o.stdout, o.stderr), 1500)
            );
        }
        let json = h.read_file(&out)?;
        let stats_text = if recipe.kind == crate::config::RuntimeKind::Ferrojit {
            h.sh(&format!("cat \"{stats}\" 2>/dev/null || true"))?
                .stdout
        } else {
            String::new()
        };
        h.sh(&format!("rm -f \"{out}\" \"{stats}\""))?;
        Ok((json, stats_text))
    }

    pub fn close(&self) {
        for r in self.hosts.values() {
            r.host.close();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

/// The CPU rigorous mode pins workers to: the first isolated CPU, or else the last one.
fn pin_cpu(p: &Probe) -> String {
    let iso = p
        .isolated
        .split(|c| c == ',' || c == '-')
        .next()
        .unwrap_or("")
        .trim();
    if !iso.is_empty() && iso.chars().all(|c| c.is_ascii_digit()) {
        iso.to_string()
    } else {
        p.cores.saturating_sub(1).to_string()
    }
}

/// Builds ferrojit's wheel for an ISA with the repository's xtask (the lab lives in the same
/// workspace).
fn build_ferrojit(wheels: &Path) -> Result<()> {
    let isa = wheels.file_name().unwrap().to_string_lossy().into_owned();
    let st = Command::new("cargo")
        .args(["xtask", "wheel", "--arch", &isa])
        .current_dir(runtime::repo_root())
        .stdout(Stdio::null())
        .status()
        .context("running cargo xtask wheel")?;
    if !st.success() || !runtime::has_wheel(wheels) {
        bail!("could not build ferrojit's wheel for {isa}; run `cargo xtask wheel --arch {isa}` and look at its errors");
    }
    Ok(())
}

/// Whether the emulated arm64 host can be used (set up by `cargo xtask setup-arm64`).
pub fn emulated_ready() -> bool {
    let root = crate::config::emulated_root(&None);
    root.join("sysroot/usr/bin/python3.11").exists()
        && Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists()
}

/// The local interpreter used by the built-in default: `python3` on PATH, which must be 3.11.
pub fn local_python() -> Result<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])",
        ])
        .output()
        .context("no python3 on PATH")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let (exe, version) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    if version != "3.11" {
        bail!("python3 on PATH is Python {version}; ferrojit needs CPython 3.11 (put one first on PATH or write a config)");
    }
    Ok(PathBuf::from(exe))
}

/// Whether `e` says the host dropped (so the rest of its cells cannot run now).
pub fn host_dropped(e: &anyhow::Error) -> bool {
    is_unreachable(e)
}

/// The hosts of a configuration that are SSH hosts (for messages).
pub fn describe_host(config: &HostConfig) -> String {
    match config {
        HostConfig::Local { .. } => "local".into(),
        HostConfig::Ssh {
            destination, port, ..
        } => match port {
            Some(p) => format!("ssh {destination}:{p}"),
            None => format!("ssh {destination}"),
        },
        HostConfig::Emulated { .. } => "emulated aarch64 (qemu-user)".into(),
    }
}
