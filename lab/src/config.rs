//! The lab's configuration: a TOML file naming hosts, runtimes, benchmarks, knob grids and the
//! comparisons to decide (schema in docs/LAB.md), and the built-in default used without a file.
//!
//! Unknown keys are errors with a suggestion; a comparison that names a host or runtime the file
//! does not define is an error that lists the ones it does.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub settings: Settings,
    pub hosts: BTreeMap<String, HostConfig>,
    pub runtimes: BTreeMap<String, RuntimeConfig>,
    #[serde(default = "default_benchmarks")]
    pub benchmarks: Vec<String>,
    #[serde(default, rename = "compare")]
    pub comparisons: Vec<Comparison>,
}

/// How much to measure and how sure to be.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// pyperf worker processes per cell (spread over the rounds).
    pub processes: u32,
    /// Timed values per process.
    pub values: u32,
    /// Warm-up values per process.
    pub warmups: u32,
    /// Rounds: each cell gets processes/rounds processes per round, and the cells of a host take
    /// turns round by round, so that drift on the host hits every runtime alike. Unset: one
    /// round per process (see [`Settings::rounds`]).
    pub rounds: Option<u32>,
    /// Confidence level of every interval.
    pub confidence: f64,
    /// Bootstrap resamples.
    pub resamples: u32,
    /// Seed of the bootstrap, so that a report is reproducible.
    pub seed: u64,
    /// Rigorous mode: twice the processes, and workers pinned to one CPU (an isolated one when
    /// the host has any).
    pub rigorous: bool,
    /// pyperf's minimum duration of one value in seconds (its --min-time; pyperf's default
    /// 0.1 when unset). Smaller makes quick smoke runs.
    pub min_time: Option<f64>,
    /// Pin pyperf's loops: calibrate them once per benchmark and host (with the host's CPython
    /// runtime, one pyperf calibration process) and give every runtime the same `--loops`, so
    /// that all of them time the same work per value. Off: each runtime's pyperf calibrates its
    /// own loops in every round.
    pub pin_loops: bool,
    /// Also count the instructions each cell executes per loop, on the hosts that can: the
    /// emulated arm64 host, and a local x86-64 host (its interpreter run under `qemu-x86_64`),
    /// both with ferrojit's qemu plugin. A comparison that involves an emulated host takes its
    /// verdict from these counts (timings under emulation are not speed measurements).
    pub count_instructions: bool,
}

impl Settings {
    /// The rounds the processes are spread over: as set, or else one per process, so that
    /// each cell's processes are interleaved with every other cell's one by one. The interval
    /// of a mean treats processes as independent; with a few rounds of several processes each,
    /// a cell's processes share a few stretches of time, and drift between those stretches
    /// (other load, the host's clock) reads as a difference between runtimes. An A/A run (one
    /// build against itself, 8 benchmarks, 6 processes) in 2 rounds gave a geometric mean of
    /// 1.023 [1.006, 1.039], "holds"; in 6 rounds 0.993 [0.979, 1.008] (docs/LAB.md).
    pub fn rounds(&self) -> u32 {
        self.rounds.unwrap_or(self.processes)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            processes: 10,
            values: 5,
            warmups: 1,
            rounds: None,
            confidence: 0.95,
            resamples: 2000,
            seed: 1,
            rigorous: false,
            min_time: None,
            pin_loops: false,
            count_instructions: false,
        }
    }
}

/// Where benchmarks run. Architecture, CPU, cores and OS are probed, never declared.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum HostConfig {
    /// This machine.
    Local {
        #[serde(default)]
        workdir: Option<String>,
    },
    /// A machine reached with the system's OpenSSH client (so ~/.ssh/config, keys, agents and
    /// jump hosts apply); one master connection per host is reused.
    Ssh {
        destination: String,
        #[serde(default)]
        port: Option<u16>,
        /// Extra options for ssh, e.g. ["-i", "key", "-o", "ProxyJump=bastion"].
        #[serde(default)]
        options: Vec<String>,
        #[serde(default)]
        workdir: Option<String>,
    },
    /// AArch64 under qemu-user on this machine, with the arm64 CPython set up by
    /// `cargo xtask setup-arm64`. Always marked emulated: its timings never enter a cross-host
    /// speed verdict.
    Emulated {
        /// The arm64 root (sysroot/ and site/); default ~/.cache/ferrojit/arm64.
        #[serde(default)]
        root: Option<String>,
        #[serde(default)]
        workdir: Option<String>,
    },
}

/// What runs the benchmarks.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    pub kind: RuntimeKind,
    /// The interpreter on the host (a name on PATH or a path). Defaults per kind; the emulated
    /// host always uses its arm64 CPython for cpython and ferrojit.
    #[serde(default)]
    pub python: Option<String>,
    /// Per-host interpreter overrides.
    #[serde(default)]
    pub python_on: BTreeMap<String, String>,
    /// For kind "command": the command that runs a benchmark script (the script and pyperf's
    /// options are appended).
    #[serde(default)]
    pub command: Vec<String>,
    /// Fixed environment for the benchmark and its pyperf workers.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Knob grid: each variable with the values to sweep; the runtime runs once per combination.
    #[serde(default)]
    pub knobs: BTreeMap<String, Vec<String>>,
    /// Hosts to run on (default: all).
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
}

impl RuntimeConfig {
    /// A runtime of `kind` with every option at its default.
    pub fn of_kind(kind: RuntimeKind) -> RuntimeConfig {
        RuntimeConfig {
            kind,
            python: None,
            python_on: BTreeMap::new(),
            command: vec![],
            env: BTreeMap::new(),
            knobs: BTreeMap::new(),
            hosts: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// A CPython interpreter as is.
    Cpython,
    /// CPython 3.11 with ferrojit built for the host's ISA.
    Ferrojit,
    /// A Python 3.14 with the `cinderx` wheel installed; knobs such as CINDERX_JIT_AUTO.
    Cinderx,
    /// PyPy.
    Pypy,
    /// Any command that runs a pyperf script.
    Command,
}

/// One question to decide.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub name: String,
    pub baseline: Selector,
    pub candidate: Selector,
    /// Benchmarks to decide on (default: all).
    #[serde(default)]
    pub benchmarks: Option<Vec<String>>,
    /// e.g. "ratio >= 1.03": the candidate at least 3% faster than the baseline.
    pub target: String,
}

/// One cell column: a runtime on a host with its knobs fixed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    pub host: String,
    pub runtime: String,
    #[serde(default)]
    pub knobs: BTreeMap<String, String>,
}

/// A parsed target: `ratio >= x` or `ratio <= x`, where ratio = baseline time / candidate time
/// (above 1: the candidate is faster).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Target {
    pub at_least: bool,
    pub value: f64,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target> {
        let t: Vec<&str> = s.split_whitespace().collect();
        let (op, value) = match t.as_slice() {
            ["ratio", op, v] => (*op, *v),
            _ => bail!("target {s:?}: expected \"ratio >= NUMBER\" or \"ratio <= NUMBER\""),
        };
        let value: f64 = value
            .parse()
            .with_context(|| format!("target {s:?}: {value:?} is not a number"))?;
        if !(value.is_finite() && value > 0.0) {
            bail!("target {s:?}: the ratio must be a positive number");
        }
        match op {
            ">=" | ">" => Ok(Target {
                at_least: true,
                value,
            }),
            "<=" | "<" => Ok(Target {
                at_least: false,
                value,
            }),
            _ => bail!("target {s:?}: unknown operator {op:?} (use >= or <=)"),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ratio {} {}",
            if self.at_least { ">=" } else { "<=" },
            self.value
        )
    }
}

fn default_benchmarks() -> Vec<String> {
    vec!["richards".into()]
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!(with_suggestion(e.message(), e.span(), text)))?;
        config.validate()?;
        Ok(config)
    }

    /// The built-in default: richards with CPython 3.11 and ferrojit on this machine, plus the
    /// emulated arm64 host when it is set up (its ratios are within-host only).
    pub fn builtin(emulated_ready: bool) -> Config {
        let mut hosts = BTreeMap::new();
        hosts.insert("local".to_string(), HostConfig::Local { workdir: None });
        if emulated_ready {
            hosts.insert(
                "arm64-qemu".to_string(),
                HostConfig::Emulated {
                    root: None,
                    workdir: None,
                },
            );
        }
        let mut runtimes = BTreeMap::new();
        runtimes.insert(
            "cpython".to_string(),
            RuntimeConfig::of_kind(RuntimeKind::Cpython),
        );
        runtimes.insert(
            "ferrojit".to_string(),
            RuntimeConfig::of_kind(RuntimeKind::Ferrojit),
        );
        let comparisons = hosts
            .keys()
            .map(|h| Comparison {
                name: format!("ferrojit speed-up on {h}"),
                baseline: Selector {
                    host: h.clone(),
                    runtime: "cpython".into(),
                    knobs: BTreeMap::new(),
                },
                candidate: Selector {
                    host: h.clone(),
                    runtime: "ferrojit".into(),
                    knobs: BTreeMap::new(),
                },
                benchmarks: None,
                target: "ratio >= 1.0".into(),
            })
            .collect();
        Config {
            settings: Settings::default(),
            hosts,
            runtimes,
            benchmarks: default_benchmarks(),
            comparisons,
        }
    }

    fn validate(&self) -> Result<()> {
        let s = &self.settings;
        if s.processes == 0 || s.values == 0 || s.rounds == Some(0) {
            bail!("settings: processes, values and rounds must be at least 1");
        }
        if s.rounds() > s.processes {
            bail!(
                "settings: rounds ({}) cannot exceed processes ({})",
                s.rounds(),
                s.processes
            );
        }
        if !(0.5..1.0).contains(&s.confidence) {
            bail!("settings: confidence must be in [0.5, 1), e.g. 0.95");
        }
        if let Some(t) = s.min_time {
            if !(t > 0.0 && t.is_finite()) {
                bail!("settings: min_time must be a positive number of seconds");
            }
        }
        if s.resamples < 100 {
            bail!("settings: resamples must be at least 100");
        }
        if self.hosts.is_empty() {
            bail!("no hosts: add e.g. [hosts.local] kind = \"local\"");
        }
        if self.runtimes.is_empty() {
            bail!("no runtimes: add e.g. [runtimes.cpython] kind = \"cpython\"");
        }
        if self.benchmarks.is_empty() {
            bail!("benchmarks is empty: name at least one (e.g. \"richards\")");
        }
        for (name, h) in &self.hosts {
            check_name("host", name)?;
            if let HostConfig::Ssh { destination, .. } = h {
                if destination.trim().is_empty() || destination.starts_with('-') {
                    bail!("host {name}: destination {destination:?} is not an ssh destination");
                }
            }
        }
        for (name, r) in &self.runtimes {
            check_name("runtime", name)?;
            if r.kind == RuntimeKind::Command && r.command.is_empty() {
                bail!(
                    "runtime {name}: kind \"command\" needs command = [\"program\", \"args\"...]"
                );
            }
            if r.kind != RuntimeKind::Command && !r.command.is_empty() {
                bail!("runtime {name}: command is only for kind \"command\"; use python for kind {:?}", r.kind);
            }
            for h in r.hosts.iter().flatten().chain(r.python_on.keys()) {
                self.known_host(h)
                    .with_context(|| format!("runtime {name}"))?;
            }
            for (k, values) in &r.knobs {
                if values.is_empty() {
                    bail!("runtime {name}: knob {k} has no values");
                }
                check_env_name(k).with_context(|| format!("runtime {name}"))?;
            }
            for k in r.env.keys() {
                check_env_name(k).with_context(|| format!("runtime {name}"))?;
            }
        }
        for c in &self.comparisons {
            let ctx = || format!("comparison {:?}", c.name);
            Target::parse(&c.target).with_context(ctx)?;
            for sel in [&c.baseline, &c.candidate] {
                self.known_host(&sel.host).with_context(ctx)?;
                self.known_runtime(&sel.runtime).with_context(ctx)?;
                let r = &self.runtimes[&sel.runtime];
                if let Some(hosts) = &r.hosts {
                    if !hosts.contains(&sel.host) {
                        bail!(
                            "{}: runtime {} does not run on host {}",
                            ctx(),
                            sel.runtime,
                            sel.host
                        );
                    }
                }
                for (k, v) in &sel.knobs {
                    match r.knobs.get(k) {
                        None => bail!("{}: runtime {} has no knob {k}", ctx(), sel.runtime),
                        Some(values) if !values.contains(v) => {
                            bail!(
                                "{}: knob {k} of runtime {} is never {v:?} (its values: {})",
                                ctx(),
                                sel.runtime,
                                values.join(", ")
                            )
                        }
                        _ => {}
                    }
                }
                let unset: Vec<&String> = r
                    .knobs
                    .keys()
                    .filter(|k| !sel.knobs.contains_key(*k))
                    .collect();
                if !unset.is_empty() {
                    bail!("{}: runtime {} sweeps {}; say which value to compare with knobs = {{ ... }}", ctx(), sel.runtime, join(&unset));
                }
            }
            for b in c.benchmarks.iter().flatten() {
                if !self.benchmarks.contains(b) {
                    bail!(
                        "{}: benchmark {b:?} is not in benchmarks ({})",
                        ctx(),
                        self.benchmarks.join(", ")
                    );
                }
            }
        }
        Ok(())
    }

    fn known_host(&self, name: &str) -> Result<()> {
        known("host", name, self.hosts.keys())
    }

    fn known_runtime(&self, name: &str) -> Result<()> {
        known("runtime", name, self.runtimes.keys())
    }

    /// Where a host keeps its environments and scratch files.
    pub fn workdir(&self, host: &str) -> String {
        let w = match &self.hosts[host] {
            HostConfig::Local { workdir }
            | HostConfig::Ssh { workdir, .. }
            | HostConfig::Emulated { workdir, .. } => workdir.clone(),
        };
        w.unwrap_or_else(|| "~/.cache/ferrojit-lab".to_string())
    }
}

/// The arm64 root of an emulated host.
pub fn emulated_root(root: &Option<String>) -> PathBuf {
    match root {
        Some(r) => PathBuf::from(expand_home(r)),
        None => match std::env::var_os("FERROJIT_ARM64_ROOT") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(expand_home("~/.cache/ferrojit/arm64")),
        },
    }
}

pub fn expand_home(p: &str) -> String {
    match p.strip_prefix("~/") {
        Some(rest) => format!(
            "{}/{}",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
            rest
        ),
        None => p.to_string(),
    }
}

fn known<'a>(
    what: &str,
    name: &str,
    names: impl Iterator<Item = &'a String> + Clone,
) -> Result<()> {
    if names.clone().any(|n| n == name) {
        return Ok(());
    }
    let all: Vec<&String> = names.collect();
    let hint = suggest(name, all.iter().map(|s| s.as_str()))
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default();
    bail!("unknown {what} {name:?}{hint}; defined: {}", join(&all))
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !ok {
        bail!("{what} name {name:?}: use letters, digits, '-', '_' and '.' (it names folders)");
    }
    Ok(())
}

fn check_env_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        bail!("{name:?} is not an environment variable name");
    }
    Ok(())
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| {
            (
                strsim::jaro_winkler(word, c)
                    .max(strsim::normalized_damerau_levenshtein(word, c) + 0.15),
                c,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// TOML's "unknown field `x`, expected one of `a`, `b`" becomes that plus "did you mean `a`?",
/// with the line number.
fn with_suggestion(message: &str, span: Option<std::ops::Range<usize>>, text: &str) -> String {
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let mut line = span.as_ref().map(|s| line_of(s.start));
    // For a tagged table the span covers the whole table: point at the offending key itself.
    if let (Some(sp), Some(rest)) = (&span, message.strip_prefix("unknown field `")) {
        if let Some((field, _)) = rest.split_once('`') {
            let mut offset = sp.start.min(text.len());
            for l in text[offset..].split_inclusive('\n') {
                let key = l.trim_start();
                if key
                    .strip_prefix(field)
                    .map(|r| r.trim_start().starts_with('='))
                    .unwrap_or(false)
                {
                    line = Some(line_of(offset));
                    break;
                }
                offset += l.len();
            }
        }
    }
    let mut out = match line {
        Some(l) => format!("line {l}: {message}"),
        None => message.to_string(),
    };
    for prefix in ["unknown field `", "unknown variant `"] {
        if let Some((word, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once('`'))
        {
            let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            if let Some(s) = suggest(word, names.into_iter()) {
                out.push_str(&format!(" (did you mean `{s}`?)"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        benchmarks = ["richards"]
        [settings]
        processes = 4
        rounds = 2
        [hosts.x86]
        kind = "local"
        [hosts.arm]
        kind = "ssh"
        destination = "me@arm"
        [runtimes.cpython]
        kind = "cpython"
        [runtimes.ferrojit]
        kind = "ferrojit"
        knobs = { FERROJIT_THRESHOLD = ["0", "50"] }
        [[compare]]
        name = "arm beats x86"
        baseline = { host = "x86", runtime = "ferrojit", knobs = { FERROJIT_THRESHOLD = "50" } }
        candidate = { host = "arm", runtime = "ferrojit", knobs = { FERROJIT_THRESHOLD = "50" } }
        target = "ratio >= 1.03"
    "#;

    fn err(text: &str) -> String {
        format!("{:#}", Config::parse(text).unwrap_err())
    }

    #[test]
    fn a_good_file_parses() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.settings.processes, 4);
        assert_eq!(c.settings.values, 5, "unset settings take their defaults");
        assert!(!c.settings.pin_loops);
        assert_eq!(c.hosts.len(), 2);
        assert_eq!(
            Target::parse(&c.comparisons[0].target).unwrap(),
            Target {
                at_least: true,
                value: 1.03
            }
        );
    }

    #[test]
    fn an_unknown_key_gets_a_suggestion_and_a_line() {
        let e = err(&GOOD.replace("processes = 4", "procesess = 4"));
        assert!(e.contains("unknown field `procesess`"), "{e}");
        assert!(e.contains("did you mean `processes`?"), "{e}");
        assert!(e.contains("line 4"), "{e}");
    }

    #[test]
    fn an_unknown_host_kind_gets_a_suggestion() {
        let e = err(&GOOD.replace("kind = \"local\"", "kind = \"locale\""));
        assert!(e.contains("did you mean `local`?"), "{e}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = err(&GOOD.replace("destination = \"me@arm\"", ""));
        assert!(e.contains("missing field `destination`"), "{e}");
    }

    #[test]
    fn a_comparison_naming_an_unknown_host_or_runtime_is_refused() {
        let e = err(&GOOD.replace("host = \"arm\"", "host = \"amr\""));
        assert!(
            e.contains("unknown host \"amr\" (did you mean \"arm\"?); defined: arm, x86"),
            "{e}"
        );
        let e = err(&GOOD.replace(
            "candidate = { host = \"arm\", runtime = \"ferrojit\"",
            "candidate = { host = \"arm\", runtime = \"pypy\"",
        ));
        assert!(e.contains("unknown runtime \"pypy\""), "{e}");
    }

    #[test]
    fn a_comparison_must_fix_every_swept_knob_to_a_swept_value() {
        let e = err(&GOOD.replace("baseline = { host = \"x86\", runtime = \"ferrojit\", knobs = { FERROJIT_THRESHOLD = \"50\" } }", "baseline = { host = \"x86\", runtime = \"ferrojit\" }"));
        assert!(e.contains("sweeps FERROJIT_THRESHOLD"), "{e}");
        let e = err(&GOOD.replace(
            "knobs = { FERROJIT_THRESHOLD = \"50\" } }\n        candidate",
            "knobs = { FERROJIT_THRESHOLD = \"7\" } }\n        candidate",
        ));
        assert!(e.contains("is never \"7\""), "{e}");
    }

    #[test]
    fn targets_parse_or_say_why_not() {
        assert_eq!(
            Target::parse("ratio <= 0.9").unwrap(),
            Target {
                at_least: false,
                value: 0.9
            }
        );
        assert!(format!("{}", Target::parse("speed >= 1").unwrap_err()).contains("expected"));
        assert!(format!("{}", Target::parse("ratio >= fast").unwrap_err()).contains("not a number"));
        assert!(
            format!("{}", Target::parse("ratio == 1").unwrap_err()).contains("unknown operator")
        );
    }

    #[test]
    fn the_example_configurations_are_valid_and_the_set_has_its_24_benchmarks() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let c = Config::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("pyperformance-set")
            {
                assert_eq!(c.benchmarks.len(), 24, "{}", path.display());
                assert!(c.settings.pin_loops, "{}", path.display());
                assert!(
                    c.comparisons
                        .iter()
                        .all(|k| k.baseline.runtime == "cpython"),
                    "{}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn the_builtin_default_compares_ferrojit_with_cpython_on_each_host() {
        let c = Config::builtin(true);
        c.validate().unwrap();
        assert_eq!(c.benchmarks, vec!["richards"]);
        assert_eq!(c.comparisons.len(), 2);
        assert!(c
            .comparisons
            .iter()
            .all(|k| k.baseline.runtime == "cpython" && k.candidate.runtime == "ferrojit"));
    }
}
