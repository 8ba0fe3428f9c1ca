//! `cargo xtask regrtest`: CPython 3.11's own regression suite (`python3 -m test`) run twice on
//! this machine, by plain CPython and with ferrojit compiling every function at threshold 0
//! (`FERROJIT=1 FERROJIT_THRESHOLD=0`), and the two compared. CPython's suite exercises far more
//! of the language and its corners than ferrojit's own tests do, and some of its tests fail on
//! this machine without any JIT (missing resources, the sandbox): only a module that fails with
//! the JIT but passes plain is news. A test with a known, explained difference is listed with
//! its reason in `xtask/regrtest-exclusions.txt` and ignored in both runs.
//!
//! Each run's output goes to `OUT/plain.log` and `OUT/jit.log` (OUT: `target/regrtest/`), each
//! python runs in its own scratch directory under OUT (regrtest writes files into its working
//! directory), and regrtest's final summary in each log is parsed into categories (failed,
//! skipped, ...; a worker that crashed or timed out counts as failed). The report goes to stdout
//! and `OUT/summary.json`; the exit status is 1 when a module fails only with the JIT.

use crate::arch::{repo_root, Arch};
use crate::build;
use crate::python;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What `cargo xtask regrtest` was asked for.
pub struct Options {
    /// The whole suite (otherwise `tests`).
    pub all: bool,
    /// Test modules, e.g. `test_int`.
    pub tests: Vec<String>,
    /// regrtest's worker processes (`-j`).
    pub jobs: u32,
    /// regrtest's per-test timeout in seconds (`--timeout`).
    pub timeout: u32,
    /// Where the logs and summary.json go (default `target/regrtest/`).
    pub out: Option<PathBuf>,
    /// Skip the plain run.
    pub jit_only: bool,
    /// The interpreter both runs use (default `python3`); another one gets its own build
    /// (`build::build_for_python`).
    pub python: Option<String>,
    /// regrtest's reference-leak hunt (`-R`, e.g. `3:3`): needs a debug CPython (`python3.11d`).
    pub huntrleaks: Option<String>,
}

/// The tests each run takes: none (regrtest's whole suite) for `--all`, else the names given.
pub fn selection(all: bool, tests: &[String]) -> Result<Vec<String>> {
    match (all, tests.is_empty()) {
        (true, true) => Ok(Vec::new()),
        (true, false) => bail!("give either --all or test names, not both"),
        (false, true) => bail!(
            "name the test modules to run (e.g. `cargo xtask regrtest test_int test_code`), \
             or pass --all for CPython's whole regression suite"
        ),
        (false, false) => Ok(tests.to_vec()),
    }
}

// ---------------------------------------------------------------------------------------------
// Exclusions

/// A test ignored in both runs, and why.
#[derive(Debug, PartialEq)]
pub struct Exclusion {
    pub id: String,
    pub reason: String,
}

/// Reads the exclusions file's format: one test ID (or regrtest pattern) a line, each directly
/// below one or more `# reason` lines; blank lines separate entries (and a comment not followed
/// by an entry, such as a header, is no reason).
pub fn parse_exclusions(text: &str) -> Result<Vec<Exclusion>> {
    let mut entries = Vec::new();
    let mut reason: Vec<&str> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            reason.clear();
        } else if let Some(comment) = line.strip_prefix('#') {
            reason.push(comment.trim());
        } else if line.contains(char::is_whitespace) {
            bail!("line {}: {line:?} is not one test ID", i + 1);
        } else if reason.is_empty() {
            bail!(
                "line {}: {line} has no `# reason` comment on the line before",
                i + 1
            );
        } else {
            entries.push(Exclusion {
                id: line.to_string(),
                reason: reason.join(" "),
            });
            reason.clear();
        }
    }
    Ok(entries)
}

fn exclusions_file() -> PathBuf {
    repo_root().join("xtask").join("regrtest-exclusions.txt")
}

/// Reads the exclusions and writes the bare IDs where regrtest's `--ignorefile` can read them
/// (it takes every line as a pattern, comments included); None when there are none.
fn write_ignorefile(out: &Path) -> Result<(Vec<Exclusion>, Option<PathBuf>)> {
    let path = exclusions_file();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let entries = parse_exclusions(&text).with_context(|| format!("in {}", path.display()))?;
    if entries.is_empty() {
        return Ok((entries, None));
    }
    let ignorefile = out.join("ignorefile.txt");
    let ids: String = entries.iter().map(|e| format!("{}\n", e.id)).collect();
    std::fs::write(&ignorefile, ids)?;
    Ok((entries, Some(ignorefile)))
}

// ---------------------------------------------------------------------------------------------
// The summary regrtest prints at the end (CPython 3.11's Lib/test/libregrtest)

/// A list in regrtest's summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// `N tests failed:` (in the final summary: after a re-run, the tests that failed again),
    /// plus the tests whose worker crashed or timed out.
    Failed,
    /// Tests whose worker process crashed (non-zero exit: a signal, or faulthandler's
    /// `--timeout` exit), was killed at the worker timeout, or hit a regrtest bug; from the
    /// progress lines.
    Crashed,
    /// `N tests failed again:` (after `--rerun`).
    FailedAgain,
    /// `N tests altered the execution environment:` (3.11.7 adds ` (env changed)`).
    EnvChanged,
    /// `N re-run tests:`.
    Rerun,
    /// `N tests run no tests:`.
    RunNoTests,
    /// `N tests skipped:`.
    Skipped,
    /// `N tests skipped (resource denied):`.
    ResourceDenied,
    /// `N tests omitted:` (not run: the suite stopped early).
    Omitted,
}

impl Category {
    pub const ALL: [Category; 9] = [
        Category::Failed,
        Category::Crashed,
        Category::FailedAgain,
        Category::EnvChanged,
        Category::Rerun,
        Category::RunNoTests,
        Category::Skipped,
        Category::ResourceDenied,
        Category::Omitted,
    ];

    /// Its key in summary.json.
    pub fn key(self) -> &'static str {
        match self {
            Category::Failed => "failed",
            Category::Crashed => "crashed_or_timed_out",
            Category::FailedAgain => "failed_again",
            Category::EnvChanged => "env_changed",
            Category::Rerun => "rerun",
            Category::RunNoTests => "run_no_tests",
            Category::Skipped => "skipped",
            Category::ResourceDenied => "resource_denied",
            Category::Omitted => "omitted",
        }
    }

    /// Its row in the report.
    pub fn label(self) -> &'static str {
        match self {
            Category::Failed => "failed",
            Category::Crashed => "  of which crashed/timed out",
            Category::FailedAgain => "failed again (re-run)",
            Category::EnvChanged => "env changed",
            Category::Rerun => "re-run",
            Category::RunNoTests => "run no tests",
            Category::Skipped => "skipped",
            Category::ResourceDenied => "skipped (resource denied)",
            Category::Omitted => "omitted",
        }
    }

    /// The category of a summary heading such as `12 tests skipped:`, and its count.
    pub fn from_heading(line: &str) -> Option<(Category, usize)> {
        let (count, title) = line.strip_suffix(':')?.split_once(' ')?;
        let count = count.parse().ok()?;
        if title == "re-run test" || title == "re-run tests" {
            return Some((Category::Rerun, count));
        }
        let title = title
            .strip_prefix("tests ")
            .or_else(|| title.strip_prefix("test "))?;
        let category = match title {
            "failed" => Category::Failed,
            "failed again" => Category::FailedAgain,
            "altered the execution environment"
            | "altered the execution environment (env changed)" => Category::EnvChanged,
            "skipped" => Category::Skipped,
            "skipped (resource denied)" => Category::ResourceDenied,
            "run no tests" => Category::RunNoTests,
            "omitted" => Category::Omitted,
            _ => return None,
        };
        Some((category, count))
    }
}

/// One run's final summary.
#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    /// From `== Tests result: STATE ==`, e.g. `FAILURE` or `SUCCESS`.
    pub state: String,
    /// From `N tests OK.` (0 when absent).
    pub ok: usize,
    /// The test names of each category present.
    pub lists: BTreeMap<Category, BTreeSet<String>>,
    /// The `Total ...` and `Result: ...` lines at the very end, as printed.
    pub totals: Vec<String>,
}

impl Summary {
    pub fn get(&self, category: Category) -> BTreeSet<String> {
        self.lists.get(&category).cloned().unwrap_or_default()
    }

    pub fn count(&self, category: Category) -> usize {
        self.lists.get(&category).map_or(0, |s| s.len())
    }
}

const RESULT_HEADING: &str = "== Tests result: ";

/// Parses a regrtest log. The final summary is the block from the last `== Tests result:`
/// heading on (after a `--rerun` there are two; the last describes the run as a whole), with
/// the `N tests failed again:` list printed just before it; crashes and timeouts come from the
/// progress lines. An interrupted run or a log without a summary is an error.
pub fn parse_summary(log: &str) -> Result<Summary> {
    let lines: Vec<&str> = log.lines().collect();
    let Some(last) = lines.iter().rposition(|l| l.starts_with(RESULT_HEADING)) else {
        bail!("no final summary (no `{}...` line)", RESULT_HEADING.trim());
    };
    let first = lines
        .iter()
        .position(|l| l.starts_with(RESULT_HEADING))
        .unwrap_or(last);
    let state = lines[last][RESULT_HEADING.len()..]
        .trim_end_matches('=')
        .trim()
        .to_string();
    let tail = &lines[last..];
    if state.contains("INTERRUPTED") || tail.iter().any(|l| l.contains("interrupted by signal")) {
        bail!("the run was interrupted (`{}`)", lines[last]);
    }
    let mut summary = Summary {
        state,
        ok: tail.iter().find_map(|l| ok_count(l)).unwrap_or(0),
        totals: tail
            .iter()
            .filter(|l| l.starts_with("Total ") || l.starts_with("Result: "))
            .map(|l| l.to_string())
            .collect(),
        ..Summary::default()
    };
    for (category, names) in parse_lists(tail)? {
        summary.lists.insert(category, names);
    }
    // Only that heading is looked for between the summaries: a re-run's verbose output could
    // hold lines that look like other headings.
    let again = lines[first..last]
        .iter()
        .rposition(|l| matches!(Category::from_heading(l), Some((Category::FailedAgain, _))));
    if let Some(i) = again {
        if let Some((_, names)) = parse_lists(&lines[first + i..last])?.into_iter().next() {
            summary.lists.insert(Category::FailedAgain, names);
        }
    }
    let crashed = crashed_tests(&lines);
    if !crashed.is_empty() {
        summary
            .lists
            .entry(Category::Failed)
            .or_default()
            .extend(crashed.iter().cloned());
        summary.lists.insert(Category::Crashed, crashed);
    }
    Ok(summary)
}

/// `N tests OK.` or `All N tests OK.`
fn ok_count(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("All ").unwrap_or(line);
    let (n, words) = rest.split_once(' ')?;
    matches!(words, "test OK." | "tests OK.")
        .then(|| n.parse().ok())
        .flatten()
}

/// The headed lists in `lines`: a heading such as `3 tests skipped:` at the start of a line,
/// then the sorted names, wrapped over lines indented by four spaces. A list whose length is
/// not its heading's count is an error (the log is not what this parser expects).
fn parse_lists(lines: &[&str]) -> Result<Vec<(Category, BTreeSet<String>)>> {
    let mut lists = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some((category, count)) = Category::from_heading(lines[i]) else {
            i += 1;
            continue;
        };
        let heading = lines[i];
        let mut names = Vec::new();
        i += 1;
        while i < lines.len() && lines[i].starts_with(' ') && !lines[i].trim().is_empty() {
            names.extend(lines[i].split_whitespace().map(str::to_string));
            i += 1;
        }
        if names.len() != count {
            bail!(
                "the summary's `{heading}` is followed by {} names, not {count}",
                names.len()
            );
        }
        lists.push((category, names.into_iter().collect()));
    }
    Ok(lists)
}

/// What a progress line such as `0:00:03 load avg: 0.88 [ 3/10/1] test_x failed (2 errors)`
/// says: the test and its outcome.
fn progress_outcome(line: &str) -> Option<(&str, &str)> {
    let open = line.find('[')?;
    let close = open + line[open..].find(']')?;
    let counter = &line[open + 1..close];
    if !counter.contains(|c: char| c.is_ascii_digit())
        || !counter
            .chars()
            .all(|c| c.is_ascii_digit() || c == '/' || c == ' ')
    {
        return None;
    }
    let (name, outcome) = line[close + 1..].strip_prefix(' ')?.split_once(' ')?;
    let is_name = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '<' || c == '>');
    is_name.then_some((name, outcome))
}

/// Tests whose worker died: `worker non-zero exit code` (a signal, or faulthandler's exit at
/// `--timeout`), `timed out` (killed at the worker timeout), `worker bug`, and older 3.11's
/// `crashed`.
fn crashed_tests(lines: &[&str]) -> BTreeSet<String> {
    const DIED: [&str; 4] = [
        "worker non-zero exit code",
        "timed out",
        "worker bug",
        "crashed",
    ];
    lines
        .iter()
        .filter_map(|l| progress_outcome(l))
        .filter(|(_, outcome)| DIED.iter().any(|d| outcome.starts_with(d)))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// What the JIT changed.
#[derive(Debug, Default, PartialEq)]
pub struct Comparison {
    /// Modules failing with the JIT that pass plain (with `--jit-only`: every JIT failure).
    pub new_failures: BTreeSet<String>,
    /// Modules failing plain whose worker crashed or timed out only with the JIT.
    pub newly_crashed: BTreeSet<String>,
}

pub fn compare(plain: Option<&Summary>, jit: &Summary) -> Comparison {
    let jit_failed = jit.get(Category::Failed);
    let Some(plain) = plain else {
        return Comparison {
            new_failures: jit_failed,
            newly_crashed: BTreeSet::new(),
        };
    };
    let plain_failed = plain.get(Category::Failed);
    let plain_crashed = plain.get(Category::Crashed);
    Comparison {
        new_failures: jit_failed.difference(&plain_failed).cloned().collect(),
        newly_crashed: jit
            .get(Category::Crashed)
            .into_iter()
            .filter(|t| plain_failed.contains(t) && !plain_crashed.contains(t))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Running

/// Whether `python` keeps a total of reference counts (`sys.gettotalrefcount`, a debug
/// build): regrtest's `-R` needs it.
fn check_counts_references(python: &str) -> Result<()> {
    let out = Command::new(python)
        .args(["-c", "import sys; print(hasattr(sys, 'gettotalrefcount'))"])
        .output()
        .with_context(|| {
            format!("running {python}: is it installed (apt-get install python3.11-dbg)?")
        })?;
    if String::from_utf8_lossy(&out.stdout).trim() != "True" {
        bail!("--huntrleaks needs a debug CPython; {python} is not one (no sys.gettotalrefcount)");
    }
    Ok(())
}

/// One `python -m test` invocation.
struct Run {
    label: &'static str,
    /// The interpreter (`python3` unless `--python` says otherwise).
    python: String,
    /// Variables set on top of the environment, which has every `FERROJIT*` variable removed.
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl Run {
    /// The command line as a shell would take it (for the report and summary.json).
    fn command_line(&self) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={v} "));
        let args = self.args.join(" ");
        format!("{}{} {args}", env.collect::<String>(), self.python)
    }

    fn command(&self, cwd: &Path) -> Command {
        let mut cmd = Command::new(&self.python);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("FERROJIT") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.args)
            .current_dir(cwd)
            .stdin(Stdio::null());
        cmd
    }
}

/// A finished run: its log, summary, time and exit status.
struct Outcome {
    log: PathBuf,
    summary: Summary,
    seconds: f64,
    exit_code: Option<i32>,
}

/// regrtest's arguments for these options.
fn regrtest_args(opts: &Options, tests: &[String], ignorefile: Option<&Path>) -> Vec<String> {
    let mut args: Vec<String> = ["-m", "test", "-j"].map(String::from).to_vec();
    args.push(opts.jobs.to_string());
    args.push("--timeout".into());
    args.push(opts.timeout.to_string());
    if let Some(spec) = &opts.huntrleaks {
        args.push("-R".into());
        args.push(spec.clone());
    }
    if let Some(file) = ignorefile {
        args.push("--ignorefile".into());
        args.push(file.display().to_string());
    }
    args.extend(tests.iter().cloned());
    args
}

/// The build's package folder first on PYTHONPATH, ahead of whatever the caller has there
/// (both runs).
fn jit_pythonpath(pkg: &Path) -> String {
    let mut paths = vec![pkg.to_path_buf()];
    if let Some(old) = std::env::var_os("PYTHONPATH") {
        paths.extend(std::env::split_paths(&old));
    }
    std::env::join_paths(paths)
        .expect("paths without separators")
        .to_string_lossy()
        .into_owned()
}

/// Runs one python in a fresh scratch directory `OUT/<label>-cwd/`, its output to
/// `OUT/<label>.log`, and parses the summary (an error keeps the log and names it).
fn execute(run: &Run, out: &Path) -> Result<Outcome> {
    let cwd = out.join(format!("{}-cwd", run.label));
    if cwd.exists() {
        std::fs::remove_dir_all(&cwd).with_context(|| format!("clearing {}", cwd.display()))?;
    }
    std::fs::create_dir_all(&cwd)?;
    let log = out.join(format!("{}.log", run.label));
    let file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    eprintln!("xtask: {} run: {}", run.label, run.command_line());
    eprintln!(
        "xtask:   output in {} (tail -f it to follow)",
        log.display()
    );
    let start = Instant::now();
    let status = run
        .command(&cwd)
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .context("could not start python3")?;
    let seconds = start.elapsed().as_secs_f64();
    let text = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let summary = parse_summary(&String::from_utf8_lossy(&text)).with_context(|| {
        format!(
            "the {} run ({status}) left no usable regrtest summary in {}; the logs are kept in {}",
            run.label,
            log.display(),
            out.display()
        )
    })?;
    Ok(Outcome {
        log,
        summary,
        seconds,
        exit_code: status.code(),
    })
}

fn output_dir(out: Option<&Path>) -> Result<PathBuf> {
    let dir = match out {
        Some(dir) => std::path::absolute(dir)?,
        None => repo_root().join("target").join("regrtest"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

pub fn run(opts: &Options) -> Result<i32> {
    let tests = selection(opts.all, &opts.tests)?;
    if Arch::host() != Arch::X86_64 {
        bail!("`regrtest` runs the host's x86-64 CPython only");
    }
    let (python, pkg) = match &opts.python {
        Some(python) => {
            if opts.huntrleaks.is_some() {
                check_counts_references(python)?;
            }
            (python.clone(), build::build_for_python(python)?)
        }
        None => {
            if opts.huntrleaks.is_some() {
                bail!(
                    "--huntrleaks needs a debug CPython (a release build cannot count \
                     references): pass --python python3.11d (apt-get install python3.11-dbg)"
                );
            }
            python::check_host_python()?;
            ("python3".to_string(), build::build(Arch::X86_64, true)?)
        }
    };
    let out = output_dir(opts.out.as_deref())?;
    let (exclusions, ignorefile) = write_ignorefile(&out)?;
    let args = regrtest_args(opts, &tests, ignorefile.as_deref());
    let jit = Run {
        label: "jit",
        python: python.clone(),
        env: vec![
            ("FERROJIT".into(), "1".into()),
            ("FERROJIT_THRESHOLD".into(), "0".into()),
            ("PYTHONPATH".into(), jit_pythonpath(&pkg)),
        ],
        args: args.clone(),
    };
    // The plain run has the build on PYTHONPATH too (its sitecustomize does nothing without
    // FERROJIT=1), so that the two runs differ only in the JIT being on.
    let plain = (!opts.jit_only).then(|| Run {
        label: "plain",
        python,
        env: vec![("PYTHONPATH".into(), jit_pythonpath(&pkg))],
        args,
    });
    let plain_outcome = plain.as_ref().map(|r| execute(r, &out)).transpose()?;
    let jit_outcome = execute(&jit, &out)?;
    let comparison = compare(
        plain_outcome.as_ref().map(|o| &o.summary),
        &jit_outcome.summary,
    );
    let runs: Vec<(&Run, &Outcome)> = plain
        .iter()
        .zip(plain_outcome.iter())
        .chain(std::iter::once((&jit, &jit_outcome)))
        .collect();
    print_report(&runs, &comparison, &exclusions, &out);
    let json = summary_json(&runs, &comparison, &exclusions);
    let path = out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(if comparison.new_failures.is_empty() {
        0
    } else {
        1
    })
}

// ---------------------------------------------------------------------------------------------
// Reporting

fn print_report(runs: &[(&Run, &Outcome)], cmp: &Comparison, exclusions: &[Exclusion], out: &Path) {
    println!(
        "CPython's regression suite, {}with FERROJIT=1 FERROJIT_THRESHOLD=0 \
         ({} exclusion(s) from xtask/regrtest-exclusions.txt)",
        if runs.len() > 1 {
            "plain and "
        } else {
            "only "
        },
        exclusions.len()
    );
    print!("{:<30}", "test modules");
    for (run, _) in runs {
        print!(" {:>10}", run.label);
    }
    println!();
    print!("{:<30}", "ok");
    for (_, o) in runs {
        print!(" {:>10}", o.summary.ok);
    }
    println!();
    for category in Category::ALL {
        print!("{:<30}", category.label());
        for (_, o) in runs {
            print!(" {:>10}", o.summary.count(category));
        }
        println!();
    }
    print!("{:<30}", "result");
    for (_, o) in runs {
        print!(" {:>10}", o.summary.state);
    }
    println!();
    print!("{:<30}", "duration");
    for (_, o) in runs {
        print!(" {:>9.0}s", o.seconds);
    }
    println!();
    let heading = if runs.len() > 1 {
        "new failures (fail with the JIT, pass plain)"
    } else {
        "failures with the JIT (--jit-only: no plain run to compare with)"
    };
    println!("{heading}: {}", list_or_none(&cmp.new_failures));
    if !cmp.newly_crashed.is_empty() {
        println!(
            "failing plain but crashed or timed out only with the JIT: {}",
            list_or_none(&cmp.newly_crashed)
        );
    }
    let logs: Vec<String> = runs
        .iter()
        .map(|(_, o)| o.log.display().to_string())
        .collect();
    println!(
        "logs: {}; summary: {}",
        logs.join(", "),
        out.join("summary.json").display()
    );
}

fn list_or_none(tests: &BTreeSet<String>) -> String {
    if tests.is_empty() {
        "none".to_string()
    } else {
        tests.iter().cloned().collect::<Vec<_>>().join(" ")
    }
}

fn summary_json(runs: &[(&Run, &Outcome)], cmp: &Comparison, exclusions: &[Exclusion]) -> Value {
    let mut by_label = serde_json::Map::new();
    for (run, o) in runs {
        let categories: serde_json::Map<String, Value> = Category::ALL
            .iter()
            .map(|c| (c.key().to_string(), json!(o.summary.get(*c))))
            .collect();
        by_label.insert(
            run.label.to_string(),
            json!({
                "command": run.command_line(),
                "cwd": o.log.with_file_name(format!("{}-cwd", run.label)),
                "log": o.log,
                "seconds": o.seconds,
                "exit_code": o.exit_code,
                "state": o.summary.state,
                "ok": o.summary.ok,
                "categories": categories,
                "totals": o.summary.totals,
            }),
        );
    }
    json!({
        "runs": by_label,
        "new_failures": cmp.new_failures,
        "failed_plain_crashed_with_jit": cmp.newly_crashed,
        "exclusions": exclusions
            .iter()
            .map(|e| json!({"id": e.id, "reason": e.reason}))
            .collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------------------------
// The leak hunt of `cargo xtask test`

/// Debian's debug build of CPython 3.11, which keeps a total of reference counts.
pub const DEBUG_PYTHON: &str = "python3.11d";

/// Test modules whose reference counts `cargo xtask test` checks with `-R 3:3` at threshold 0
/// under [`DEBUG_PYTHON`]: calls with every argument shape, closures, generators and
/// coroutines, `with`, exceptions, comprehensions, containers and classes; a few minutes.
pub const LEAK_HUNT_SUBSET: [&str; 12] = [
    "test_int",
    "test_list",
    "test_dict",
    "test_with",
    "test_scope",
    "test_generators",
    "test_class",
    "test_contextlib",
    "test_functools",
    "test_exceptions",
    "test_keywordonlyarg",
    "test_listcomps",
];

/// Installs [`DEBUG_PYTHON`] and CPython's test package when missing (Debian's
/// `python3.11-dbg` and `libpython3.11-testsuite`).
pub fn ensure_debug_python() -> Result<()> {
    let works = Command::new(DEBUG_PYTHON)
        .args([
            "-c",
            "import sys, test.test_int; assert hasattr(sys, 'gettotalrefcount')",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if works {
        return Ok(());
    }
    eprintln!("xtask: installing python3.11-dbg and libpython3.11-testsuite for the leak hunt");
    crate::run::check(Command::new("apt-get").args(["update", "-qq"]))?;
    crate::run::check(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(["python3.11-dbg", "libpython3.11-testsuite"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("installing Debian's debug CPython 3.11")
}

/// `cargo xtask test`'s reference-leak step: [`LEAK_HUNT_SUBSET`] with `-R 3:3`, plain and at
/// threshold 0, under the debug build; passes when no module leaks (or fails) only with the JIT.
pub fn leak_hunt() -> Result<bool> {
    ensure_debug_python()?;
    let code = run(&Options {
        all: false,
        tests: LEAK_HUNT_SUBSET.iter().map(|t| t.to_string()).collect(),
        jobs: 2,
        timeout: 900,
        out: Some(repo_root().join("target").join("regrtest-leaks")),
        jit_only: false,
        python: Some(DEBUG_PYTHON.to_string()),
        huntrleaks: Some("3:3".to_string()),
    })?;
    Ok(code == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// A `-j 2` run of the whole suite as 3.11.7 prints it: progress (with a worker killed by
    /// a signal and one that hit faulthandler's `--timeout` exit), then the summary with its
    /// lists wrapped at 70 columns.
    const FULL_RUN: &str = "\
== CPython 3.11.7 (main, Dec  6 2026, 08:00:00) [GCC 12.2.0]
== Linux-6.1.0-x86_64-with-glibc2.36 little-endian
Using random seed: 2986909964
0:00:00 load avg: 1.18 Run 392 tests in parallel using 2 worker processes (timeout: 15 min, worker timeout: 20 min)
0:00:01 load avg: 1.18 [  1/392] test_bool passed
0:00:02 load avg: 1.20 [  2/392/1] test_code worker non-zero exit code (Exit code -11 (SIGSEGV)) -- running (1): test_io (31.0 sec)
Fatal Python error: Segmentation fault
0:15:15 load avg: 1.30 [  3/392/2] test_io worker non-zero exit code (Exit code 1)
Timeout (0:15:00)!
Thread 0x00007f (most recent call first):
0:15:16 load avg: 1.30 [  4/392/3] test_int failed (2 errors, 1 failure)
test test_int failed
0:15:17 load avg: 1.30 [  5/392/4] test.test_asyncio.test_tasks failed (1 failure)
0:15:17 load avg: 1.30 [  6/392/4] test_ssl skipped (resource denied)
0:15:18 load avg: 1.30 [  7/392/5] test_os failed (env changed)
0:15:19 load avg: 1.30 [  8/392/5] test_winreg skipped
0:25:03 load avg: 1.30 [392/392/5] test_zipfile64 skipped (resource denied)

== Tests result: FAILURE ==

8 tests skipped:
    test_devpoll test_ioctl test_kqueue test_launcher test_msilib
    test_startfile test_winconsoleio test_winreg

2 tests skipped (resource denied):
    test_ssl test_zipfile64

1 test altered the execution environment (env changed):
    test_os

4 tests failed:
    test.test_asyncio.test_tasks test_code test_int test_io

377 tests OK.

Total duration: 25 min 3 sec
Total tests: run=40,123 failures=4 skipped=1,234
Total test files: run=392/392 failed=4 env_changed=1 skipped=8 resource_denied=2
Result: FAILURE
";

    #[test]
    fn the_final_summary_is_parsed_into_its_lists() {
        let s = parse_summary(FULL_RUN).unwrap();
        assert_eq!(s.state, "FAILURE");
        assert_eq!(s.ok, 377);
        assert_eq!(
            s.get(Category::Skipped),
            set(&[
                "test_devpoll",
                "test_ioctl",
                "test_kqueue",
                "test_launcher",
                "test_msilib",
                "test_startfile",
                "test_winconsoleio",
                "test_winreg"
            ])
        );
        assert_eq!(
            s.get(Category::ResourceDenied),
            set(&["test_ssl", "test_zipfile64"])
        );
        assert_eq!(s.get(Category::EnvChanged), set(&["test_os"]));
        assert_eq!(
            s.get(Category::Failed),
            set(&[
                "test.test_asyncio.test_tasks",
                "test_code",
                "test_int",
                "test_io"
            ])
        );
        assert_eq!(s.get(Category::Crashed), set(&["test_code", "test_io"]));
        assert!(s.get(Category::FailedAgain).is_empty());
        assert!(s.get(Category::Rerun).is_empty());
        assert_eq!(s.totals.len(), 4);
        assert_eq!(s.totals[3], "Result: FAILURE");
    }

    #[test]
    fn a_list_whose_length_is_not_its_count_is_rejected() {
        let log = FULL_RUN.replace("8 tests skipped:", "9 tests skipped:");
        let err = parse_summary(&log).unwrap_err();
        assert!(err.to_string().contains("9 tests skipped"), "{err}");
    }

    #[test]
    fn a_worker_that_crashed_counts_as_failed_even_if_the_summary_misses_it() {
        let log = FULL_RUN.replace(
            "4 tests failed:\n    test.test_asyncio.test_tasks test_code test_int test_io\n",
            "2 tests failed:\n    test.test_asyncio.test_tasks test_int\n",
        );
        let s = parse_summary(&log).unwrap();
        assert_eq!(
            s.get(Category::Failed),
            set(&[
                "test.test_asyncio.test_tasks",
                "test_code",
                "test_int",
                "test_io"
            ])
        );
    }

    /// The end of a long `--rerun` run (as `--ci` does): the failures wrapped over several
    /// lines, a re-run pass (with a verbose test's output) after which two tests failed again,
    /// and the second summary, which is the one that counts.
    const RERUN: &str = "\
0:40:10 load avg: 2.01 [431/434/14] test_zipimport passed
0:40:12 load avg: 2.01 [432/434/14] test_zlib passed
0:40:15 load avg: 2.01 [433/434/14] test_zoneinfo passed
0:40:15 load avg: 2.01 [434/434/14] test_zipfile timed out (22 min 30 sec)

== Tests result: FAILURE ==

22 tests skipped:
    test_devpoll test_gdb test_idle test_ioctl test_kqueue
    test_launcher test_msilib test_perf_profiler test_smtpnet
    test_socketserver test_startfile test_tcl test_tix test_tkinter
    test_ttk test_ttk_textonly test_turtle test_urllib2net
    test_urllibnet test_winconsoleio test_winreg test_winsound

1 test altered the execution environment (env changed):
    test_threading

13 tests failed:
    test.test_asyncio.test_tasks
    test.test_concurrent_futures.test_wait
    test.test_inspect.test_inspect test_capi test_code test_dis
    test_exceptions test_generators test_sys test_sys_settrace
    test_trace test_traceback test_zipfile

398 tests OK.

0:40:16 load avg: 2.01 Re-running 14 failed tests in verbose mode in subprocesses
0:40:16 load avg: 2.01 Run 14 tests in parallel using 2 worker processes (timeout: 15 min, worker timeout: 20 min)
0:41:20 load avg: 1.50 [ 1/14] test.test_asyncio.test_tasks passed
0:41:59 load avg: 1.50 [ 2/14/1] test_code failed (1 error)
test_co_positions (test.test_code.CodeTest.test_co_positions) ... FAIL
3 tests failed:
AssertionError: a verbose test's own output, not regrtest's
0:42:30 load avg: 1.50 [14/14/2] test_zipfile passed
2 tests failed again:
    test_code test_dis

== Tests result: FAILURE then FAILURE ==

22 tests skipped:
    test_devpoll test_gdb test_idle test_ioctl test_kqueue
    test_launcher test_msilib test_perf_profiler test_smtpnet
    test_socketserver test_startfile test_tcl test_tix test_tkinter
    test_ttk test_ttk_textonly test_turtle test_urllib2net
    test_urllibnet test_winconsoleio test_winreg test_winsound

14 re-run tests:
    test.test_asyncio.test_tasks
    test.test_concurrent_futures.test_wait
    test.test_inspect.test_inspect test_capi test_code test_dis
    test_exceptions test_generators test_sys test_sys_settrace
    test_threading test_trace test_traceback test_zipfile

2 tests failed:
    test_code test_dis

410 tests OK.

Total duration: 42 min 31 sec
Total tests: run=41,002 failures=15 skipped=1,801
Total test files: run=446/434 failed=2 skipped=22 rerun=14
Result: FAILURE then FAILURE
";

    #[test]
    fn after_a_rerun_the_second_summary_counts() {
        let s = parse_summary(RERUN).unwrap();
        assert_eq!(s.state, "FAILURE then FAILURE");
        assert_eq!(s.ok, 410);
        assert_eq!(
            s.get(Category::FailedAgain),
            set(&["test_code", "test_dis"])
        );
        assert_eq!(s.count(Category::Rerun), 14);
        assert!(s
            .get(Category::Rerun)
            .contains("test.test_concurrent_futures.test_wait"));
        assert!(s.get(Category::Rerun).contains("test_threading"));
        assert!(!s.get(Category::Rerun).contains("test_winreg"));
        assert_eq!(s.count(Category::Skipped), 22);
        assert!(s.get(Category::Skipped).contains("test_ttk_textonly"));
        assert!(s.get(Category::Skipped).contains("test_winsound"));
        assert!(s.get(Category::EnvChanged).is_empty());
        // The worker killed at the worker timeout counts as failed though its re-run passed.
        assert_eq!(s.get(Category::Crashed), set(&["test_zipfile"]));
        assert_eq!(
            s.get(Category::Failed),
            set(&["test_code", "test_dis", "test_zipfile"])
        );
    }

    #[test]
    fn a_summary_that_passes_after_a_rerun_has_no_failures_left() {
        let log = RERUN
            .replace(
                "[434/434/14] test_zipfile timed out (22 min 30 sec)",
                "[434/434/14] test_zipfile failed",
            )
            .replace("2 tests failed again:\n    test_code test_dis\n", "")
            .replace("2 tests failed:\n    test_code test_dis\n\n", "")
            .replace("FAILURE then FAILURE", "FAILURE then SUCCESS");
        let s = parse_summary(&log).unwrap();
        assert_eq!(s.state, "FAILURE then SUCCESS");
        assert!(s.get(Category::Failed).is_empty());
        assert!(s.get(Category::FailedAgain).is_empty());
        assert_eq!(s.count(Category::Rerun), 14);
    }

    #[test]
    fn a_log_without_a_summary_or_interrupted_is_an_error() {
        let cut = &FULL_RUN[..FULL_RUN.find("== Tests result").unwrap()];
        assert!(parse_summary(cut)
            .unwrap_err()
            .to_string()
            .contains("no final summary"));
        let interrupted = "0:00:01 load avg: 1.0 [1/2] test_bool passed\n\n\
            == Tests result: INTERRUPTED ==\n\n1 test omitted:\n    test_int\n\n\
            1 test OK.\n\nTest suite interrupted by signal SIGINT.\n";
        assert!(parse_summary(interrupted)
            .unwrap_err()
            .to_string()
            .contains("interrupted"));
    }

    #[test]
    fn a_small_successful_run() {
        let log = "Using random seed: 1\n\
            0:00:00 load avg: 1.18 Run 2 tests in parallel using 1 worker process (timeout: 15 min, worker timeout: 20 min)\n\
            0:00:00 load avg: 1.18 [1/2] test_bool passed\n\
            0:00:03 load avg: 1.18 [2/2] test_int passed\n\n\
            == Tests result: SUCCESS ==\n\nAll 2 tests OK.\n\n\
            Total duration: 3.2 sec\nTotal tests: run=450 (filtered)\n\
            Total test files: run=2/2 (filtered)\nResult: SUCCESS\n";
        let s = parse_summary(log).unwrap();
        assert_eq!(s.state, "SUCCESS");
        assert_eq!(s.ok, 2);
        assert!(s.lists.is_empty());
    }

    /// regrtest 3.11's output for `-R 3:3` with one module that leaks (taken from
    /// `python3.11d -m test -j 2 -R 3:3` on two small modules): the leak is a failure.
    #[test]
    fn a_reference_leak_counts_as_a_failure() {
        let log = "0:00:00 load avg: 0.84 Run tests in parallel using 2 child processes\n\
            0:00:00 load avg: 0.84 [1/2] test_fine passed\n\
            beginning 6 repetitions\n123456\n......\n\
            0:00:00 load avg: 0.84 [2/2/1] test_leaky failed (reference leak)\n\
            beginning 6 repetitions\n123456\n......\n\
            test_leaky leaked [1, 1, 1] references, sum=3\n\n\
            == Tests result: FAILURE ==\n\n1 test OK.\n\n1 test failed:\n    test_leaky\n\n\
            Total duration: 478 ms\nTests result: FAILURE\n";
        let jit = parse_summary(log).unwrap();
        assert_eq!(jit.get(Category::Failed), set(&["test_leaky"]));
        let plain = parse_summary(&log.replace("test_leaky", "test_fine")).unwrap();
        assert_eq!(
            compare(Some(&plain), &jit).new_failures,
            set(&["test_leaky"])
        );
    }

    #[test]
    fn the_leak_hunt_is_passed_to_regrtest() {
        let opts = Options {
            all: false,
            tests: vec!["test_int".into()],
            jobs: 2,
            timeout: 900,
            out: None,
            jit_only: false,
            python: Some("python3.11d".into()),
            huntrleaks: Some("3:3".into()),
        };
        let args = regrtest_args(&opts, &opts.tests, None);
        assert_eq!(
            args,
            [
                "-m",
                "test",
                "-j",
                "2",
                "--timeout",
                "900",
                "-R",
                "3:3",
                "test_int"
            ]
        );
    }

    #[test]
    fn older_headings_are_read_too() {
        assert_eq!(
            Category::from_heading("2 tests altered the execution environment:"),
            Some((Category::EnvChanged, 2))
        );
        assert_eq!(
            Category::from_heading("1 re-run test:"),
            Some((Category::Rerun, 1))
        );
        assert_eq!(
            Category::from_heading("1 test run no tests:"),
            Some((Category::RunNoTests, 1))
        );
        assert_eq!(Category::from_heading("Total tests: run=1"), None);
        assert_eq!(Category::from_heading("10 slowest tests:"), None);
        assert_eq!(
            crashed_tests(&[
                "0:01:00 load avg: 1.0 [ 7/20/1] test_x crashed (Exit code -6)",
                "[ 8/20/2] test_y failed (uncaught exception)",
                "0:01:02 load avg: 1.0 running (1): test_z (30.0 sec)",
            ]),
            set(&["test_x"])
        );
    }

    #[test]
    fn new_failures_are_those_that_pass_plain() {
        let summary = |failed: &[&str], crashed: &[&str]| {
            let mut s = Summary::default();
            s.lists.insert(Category::Failed, set(failed));
            s.lists.insert(Category::Crashed, set(crashed));
            s
        };
        let plain = summary(&["test_ssl", "test_gdb"], &[]);
        let jit = summary(&["test_ssl", "test_gdb", "test_code"], &["test_gdb"]);
        let cmp = compare(Some(&plain), &jit);
        assert_eq!(cmp.new_failures, set(&["test_code"]));
        assert_eq!(cmp.newly_crashed, set(&["test_gdb"]));
        let alone = compare(None, &jit);
        assert_eq!(
            alone.new_failures,
            set(&["test_code", "test_gdb", "test_ssl"])
        );
        assert!(alone.newly_crashed.is_empty());
    }

    #[test]
    fn exclusions_need_a_reason() {
        let text = "# header\n\n# why one\n# and more\ntest.a.B.test_c\n\n# why two\ntest_d\n";
        assert_eq!(
            parse_exclusions(text).unwrap(),
            vec![
                Exclusion {
                    id: "test.a.B.test_c".into(),
                    reason: "why one and more".into()
                },
                Exclusion {
                    id: "test_d".into(),
                    reason: "why two".into()
                },
            ]
        );
        assert!(parse_exclusions("# header\n\ntest_d\n").is_err());
        assert!(parse_exclusions("# why\ntest_a\ntest_b\n").is_err());
        assert!(parse_exclusions("# why\ntest_a test_b\n").is_err());
        let shipped = std::fs::read_to_string(exclusions_file()).unwrap();
        let shipped = parse_exclusions(&shipped).unwrap();
        assert_eq!(shipped.len(), 6);
        assert_eq!(
            shipped[0].id,
            "test.test_support.TestSupport.test_recursion"
        );
    }

    #[test]
    fn the_selection_needs_all_or_names() {
        assert!(selection(false, &[]).is_err());
        assert!(selection(true, &["test_int".into()]).is_err());
        assert_eq!(selection(true, &[]).unwrap(), Vec::<String>::new());
        assert_eq!(
            selection(false, &["test_int".into()]).unwrap(),
            vec!["test_int".to_string()]
        );
    }
}
