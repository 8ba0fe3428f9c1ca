//! End-to-end tests of ferrojit-lab against real parts: an OpenSSH server started here on a
//! loopback port with throw-away host and user keys (reached through the system's ssh client),
//! the emulated arm64 host, a tiny pyperf benchmark, faults (the server killed mid-run, an
//! unreachable host, a bad configuration, a runtime missing on a host), and the HTML report
//! opened in headless Chromium.
//!
//! These tests need sshd, chromium, the arm64 set-up and ferrojit built for both ISAs, which
//! `cargo xtask test` provides before it runs them (its "lab end-to-end" step, with
//! `--include-ignored`); under a bare `cargo test` they are ignored for that reason.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrojit-lab"))
}

fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A throw-away OpenSSH server on 127.0.0.1.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Sshd {
    fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (key, file) in [("host", "host_key"), ("user", "user_key")] {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(d.join(file))
                .status()
                .unwrap();
            assert!(st.success(), "ssh-keygen failed");
        }
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPidFile {pid}\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers {user}\nMaxSessions 50\nMaxStartups 50\n",
            hk = d.join("host_key").display(),
            ak = d.join("authorized_keys").display(),
            pid = d.join("sshd.pid").display(),
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        std::fs::create_dir_all("/run/sshd").ok();
        let mut s = Sshd {
            dir,
            port,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("starting /usr/sbin/sshd");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "sshd did not listen: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server and every connection it serves (so reused connections die too).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("pkill")
                .args(["-9", "-P", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn host_toml(&self, name: &str) -> String {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        format!(
            "[hosts.{name}]\nkind = \"ssh\"\ndestination = \"{user}@127.0.0.1\"\nport = {}\noptions = [\"-i\", \"{}\", \"-o\", \"StrictHostKeyChecking=no\", \"-o\", \"UserKnownHostsFile=/dev/null\", \"-o\", \"LogLevel=ERROR\"]\nworkdir = \"{}\"\n",
            self.port,
            self.dir.path().join("user_key").display(),
            self.dir.path().join("remote-work").display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A benchmark that takes milliseconds and records the knob it saw in its worker.
fn tiny_benchmark(dir: &Path) -> PathBuf {
    let p = dir.join("tiny.py");
    std::fs::write(
        &p,
        "import os, pyperf\n\
         def work():\n    s = 0\n    for i in range(3000):\n        s += i * i\n    return s\n\
         runner = pyperf.Runner()\n\
         runner.metadata['lab_knob'] = os.environ.get('LAB_KNOB', 'unset')\n\
         runner.bench_func('tiny', work)\n",
    )
    .unwrap();
    p
}

fn settings(processes: u32, rounds: u32) -> String {
    format!("[settings]\nprocesses = {processes}\nrounds = {rounds}\nvalues = 2\nwarmups = 1\nmin_time = 0.002\nresamples = 500\n")
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("lab.toml");
    std::fs::write(&p, body).unwrap();
    p
}

/// `ferrojit-lab --config CFG run --quiet --out RUN`.
fn run_lab(cfg: &Path, run: &Path) -> Output {
    lab()
        .arg("--config")
        .arg(cfg)
        .args(["run", "--quiet", "--out"])
        .arg(run)
        .output()
        .unwrap()
}

fn summary(run: &Path) -> serde_json::Value {
    // The newest: names end with the report's timestamp.
    let f = std::fs::read_dir(run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("summary_")
        })
        .max()
        .unwrap_or_else(|| panic!("no summary in {}", run.display()));
    serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap()
}

fn cell<'a>(s: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    s["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no cell {id} in {s}"))
}

/// Loads the page in headless Chromium and returns (plots rendered, plots in the page).
fn rendered_plots(html: &Path) -> (u32, u32) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("running chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let attr = |name: &str| -> u32 {
        let key = format!("{name}=\"");
        let at = dom.find(&key).unwrap_or_else(|| {
            panic!(
                "{name} missing: the page's script did not run.\n{}",
                text(&out)
            )
        });
        dom[at + key.len()..]
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (attr("data-plots-rendered"), attr("data-plots-total"))
}

#[test]
#[ignore = "needs sshd, chromium, the arm64 set-up and ferrojit builds: `cargo xtask test` runs it"]
fn a_run_through_loopback_ssh_and_the_emulated_host_reports_json_markdown_and_html() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let bench = tiny_benchmark(work.path());
    let py = python();
    let config = format!(
        "benchmarks = [\"{bench}\"]\n{settings}{ssh}\n[hosts.emu]\nkind = \"emulated\"\nworkdir = \"{emuwork}\"\n\
         [runtimes.cpython]\nkind = \"cpython\"\npython = \"{py}\"\n\
         [runtimes.ferrojit]\nkind = \"ferrojit\"\npython = \"{py}\"\nknobs = {{ LAB_KNOB = [\"a\", \"b\"] }}\n\
         [[compare]]\nname = \"ferrojit on the ssh host\"\nbaseline = {{ host = \"loop\", runtime = \"cpython\" }}\ncandidate = {{ host = \"loop\", runtime = \"ferrojit\", knobs = {{ LAB_KNOB = \"a\" }} }}\ntarget = \"ratio >= 0.5\"\n\
         [[compare]]\nname = \"emulated arm64 vs x86\"\nbaseline = {{ host = \"loop\", runtime = \"ferrojit\", knobs = {{ LAB_KNOB = \"a\" }} }}\ncandidate = {{ host = \"emu\", runtime = \"ferrojit\", knobs = {{ LAB_KNOB = \"a\" }} }}\ntarget = \"ratio >= 1.03\"\n",
        bench = bench.display(),
        settings = settings(2, 1),
        ssh = sshd.host_toml("loop"),
        emuwork = work.path().join("emu-work").display(),
    );
    let cfg = write_config(work.path(), &config);
    let run = work.path().join("run");

    let check = lab()
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .unwrap();
    let out = text(&check);
    assert!(out.contains("host loop (ssh"), "{out}");
    assert!(
        out.contains("x86_64") && out.contains("aarch64"),
        "both ISAs are probed: {out}"
    );
    assert!(out.contains("emulated by qemu-aarch64"), "{out}");

    let o = run_lab(&cfg, &run);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("| loop/ferrojit,LAB_KNOB=a/tiny.py | complete |"),
        "markdown table: {stdout}"
    );

    let s = summary(&run);
    assert_eq!(s["schema"], "ferrojit-lab/summary");
    assert_eq!(s["schema_version"], 1);
    let name = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("summary_"))
        .unwrap();
    assert!(name.starts_with("summary_loop_vs_emu_"), "{name}");
    for id in [
        "loop/cpython/tiny.py",
        "loop/ferrojit,LAB_KNOB=b/tiny.py",
        "emu/cpython/tiny.py",
        "emu/ferrojit,LAB_KNOB=a/tiny.py",
    ] {
        let c = cell(&s, id);
        assert_eq!(c["status"], "complete", "{c}");
        assert_eq!(c["stats"]["processes"], 2, "{c}");
        assert!(c["stats"]["mean"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(cell(&s, "emu/cpython/tiny.py")["emulated"], true);
    // ferrojit's counters come back from both ISAs.
    assert_eq!(
        cell(&s, "emu/ferrojit,LAB_KNOB=a/tiny.py")["counters"]["isa"],
        "aarch64"
    );
    assert_eq!(
        cell(&s, "loop/ferrojit,LAB_KNOB=a/tiny.py")["counters"]["isa"],
        "x86_64"
    );
    assert!(
        cell(&s, "loop/ferrojit,LAB_KNOB=a/tiny.py")["counters"]["functions_compiled"]
            .as_f64()
            .unwrap()
            >= 1.0
    );
    // Knobs reach pyperf's worker processes.
    for knob in ["a", "b"] {
        let raw = std::fs::read_to_string(run.join(format!(
            "raw/loop/ferrojit,LAB_KNOB={knob}/tiny/round-0.json"
        )))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(
            v["metadata"]["lab_knob"], knob,
            "the workers saw another knob: {raw}"
        );
    }
    // The cross-host comparison with the emulated host gets no speed verdict.
    let cmp = &s["comparisons"][1];
    assert_eq!(cmp["verdict"], "not-applicable", "{cmp}");
    assert!(
        cmp["geomean"].is_null() && cmp["per_benchmark"][0]["ratio"].is_null(),
        "no speed figure either: {cmp}"
    );
    assert!(
        cmp["reason"].as_str().unwrap().contains("emulated"),
        "{cmp}"
    );
    assert!(["holds", "fails", "inconclusive"]
        .contains(&s["comparisons"][0]["verdict"].as_str().unwrap()));
    assert_eq!(
        s["sweeps"].as_array().unwrap().len(),
        2,
        "one knob sweep per host"
    );

    let (rendered, total) = rendered_plots(&run.join("report.html"));
    assert!(total >= 4, "ratio, distribution and sweep plots: {total}");
    assert_eq!(rendered, total, "every plot lays out with a size and marks");

    // `report` again gives the same cells; `compare` of the run with itself shows no change.
    let r = lab().arg("report").arg(&run).output().unwrap();
    assert!(r.status.success(), "{}", text(&r));
    let c = lab().arg("compare").arg(&run).arg(&run).output().unwrap();
    assert!(c.status.success(), "{}", text(&c));
    assert!(
        String::from_utf8_lossy(&c.stdout).contains("| loop/cpython/tiny.py | 1.000x"),
        "{}",
        text(&c)
    );
}

#[test]
#[ignore = "needs sshd, chromium, the arm64 set-up and ferrojit builds: `cargo xtask test` runs it"]
fn a_server_killed_mid_run_keeps_finished_cells_and_resume_completes_the_rest() {
    let mut sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let bench = tiny_benchmark(work.path());
    let py = python();
    // Host "a" (ssh) runs before host "b" (local).
    let config = format!(
        "benchmarks = [\"{}\"]\n{}{}\n[hosts.b]\nkind = \"local\"\nworkdir = \"{}\"\n[runtimes.cpython]\nkind = \"cpython\"\npython = \"{py}\"\nknobs = {{ LAB_KNOB = [\"1\", \"2\"] }}\n",
        bench.display(),
        settings(3, 3),
        sshd.host_toml("a"),
        work.path().join("local-work").display()
    );
    let cfg = write_config(work.path(), &config);
    let run = work.path().join("run");
    let mut child = lab()
        .arg("--config")
        .arg(&cfg)
        .args(["run", "--quiet", "--out"])
        .arg(&run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = run.join("raw/a/cpython,LAB_KNOB=1/tiny/round-0.json");
    let start = Instant::now();
    while !first.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the first round never finished"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the first round"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sshd.kill();
    let o = child.wait_with_output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "a partial run exits 1: {out}");
    assert!(out.contains("--resume"), "it says how to finish: {out}");
    assert!(first.exists(), "the finished round is kept");
    let failures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("failures.json")).unwrap()).unwrap();
    assert!(
        failures
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k.starts_with("a/")),
        "only the ssh host's cells failed: {failures}"
    );
    assert!(!failures.as_object().unwrap().is_empty());
    let s = summary(&run);
    assert_eq!(
        cell(&s, "b/cpython,LAB_KNOB=2/tiny.py")["status"],
        "complete",
        "the other host went on"
    );
    assert_ne!(
        cell(&s, "a/cpython,LAB_KNOB=2/tiny.py")["status"],
        "complete"
    );
    let kept = std::fs::metadata(&first).unwrap().modified().unwrap();

    sshd.spawn();
    let o = lab()
        .args(["run", "--quiet", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\nsshd log:\n{}",
        text(&o),
        std::fs::read_to_string(sshd.dir.path().join("sshd.log")).unwrap_or_default()
    );
    let s = summary(&run);
    for c in s["cells"].as_array().unwrap() {
        assert_eq!(c["status"], "complete", "{c}");
    }
    assert_eq!(
        std::fs::metadata(&first).unwrap().modified().unwrap(),
        kept,
        "finished rounds are not redone"
    );
    assert!(
        !run.join("failures.json").exists()
            || std::fs::read_to_string(run.join("failures.json"))
                .unwrap()
                .trim()
                == "{}"
    );
}

#[test]
#[ignore = "needs sshd, chromium, the arm64 set-up and ferrojit builds: `cargo xtask test` runs it"]
fn an_unreachable_host_and_a_missing_runtime_fail_their_cells_with_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let bench = tiny_benchmark(work.path());
    let py = python();
    let closed = free_port();
    let config = format!(
        "benchmarks = [\"{bench}\"]\n{settings}\n[hosts.gone]\nkind = \"ssh\"\ndestination = \"nobody@127.0.0.1\"\nport = {closed}\n\
         [hosts.here]\nkind = \"local\"\nworkdir = \"{w}\"\n\
         [runtimes.cpython]\nkind = \"cpython\"\npython = \"{py}\"\n\
         [runtimes.absent]\nkind = \"cpython\"\npython = \"/nonexistent/python3.11\"\nhosts = [\"here\"]\n",
        bench = bench.display(),
        settings = settings(2, 1),
        w = work.path().join("w").display()
    );
    let cfg = write_config(work.path(), &config);
    let check = lab()
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .unwrap();
    let out = text(&check);
    assert_eq!(check.status.code(), Some(1), "{out}");
    assert!(
        out.contains("host gone (ssh nobody@127.0.0.1")
            && out.contains("unreachable")
            && out.contains("Connection refused"),
        "{out}"
    );
    assert!(
        out.contains("runtime absent")
            && out.contains("missing: interpreter /nonexistent/python3.11"),
        "{out}"
    );

    let run = work.path().join("run");
    let o = run_lab(&cfg, &run);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let s = summary(&run);
    assert_eq!(cell(&s, "here/cpython/tiny.py")["status"], "complete");
    let gone = cell(&s, "gone/cpython/tiny.py");
    assert_eq!(gone["status"], "failed");
    assert!(
        gone["error"].as_str().unwrap().contains("unreachable"),
        "{gone}"
    );
    let absent = cell(&s, "here/absent/tiny.py");
    assert_eq!(absent["status"], "failed");
    assert!(
        absent["error"]
            .as_str()
            .unwrap()
            .contains("not usable on here"),
        "{absent}"
    );
}

#[test]
#[ignore = "needs sshd, chromium, the arm64 set-up and ferrojit builds: `cargo xtask test` runs it"]
fn counted_instructions_decide_the_comparisons_that_involve_the_emulated_host() {
    let work = tempfile::tempdir().unwrap();
    let bench = tiny_benchmark(work.path());
    let py = python();
    let config = format!(
        "benchmarks = [\"{bench}\"]\n{settings}count_instructions = true\n\
         [hosts.here]\nkind = \"local\"\nworkdir = \"{w}\"\n\
         [hosts.emu]\nkind = \"emulated\"\nworkdir = \"{w}\"\n\
         [runtimes.cpython]\nkind = \"cpython\"\npython = \"{py}\"\n\
         [runtimes.ferrojit]\nkind = \"ferrojit\"\npython = \"{py}\"\n\
         [[compare]]\nname = \"ferrojit vs CPython on arm64\"\nbaseline = {{ host = \"emu\", runtime = \"cpython\" }}\ncandidate = {{ host = \"emu\", runtime = \"ferrojit\" }}\ntarget = \"ratio >= 1.0\"\n\
         [[compare]]\nname = \"arm64 vs x86\"\nbaseline = {{ host = \"here\", runtime = \"ferrojit\" }}\ncandidate = {{ host = \"emu\", runtime = \"ferrojit\" }}\ntarget = \"ratio >= 0.01\"\n\
         [[compare]]\nname = \"ferrojit vs CPython on x86\"\nbaseline = {{ host = \"here\", runtime = \"cpython\" }}\ncandidate = {{ host = \"here\", runtime = \"ferrojit\" }}\ntarget = \"ratio >= 0.5\"\n",
        bench = bench.display(),
        settings = settings(2, 1),
        w = work.path().join("w").display()
    );
    let cfg = write_config(work.path(), &config);
    let run = work.path().join("run");
    let o = run_lab(&cfg, &run);
    assert!(o.status.success(), "{}", text(&o));
    let s = summary(&run);
    for id in [
        "here/cpython/tiny.py",
        "here/ferrojit/tiny.py",
        "emu/cpython/tiny.py",
        "emu/ferrojit/tiny.py",
    ] {
        let c = cell(&s, id);
        assert!(c["counts_error"].is_null(), "{c}");
        let k = &c["counts"];
        assert!(k["loops"].as_u64().unwrap() >= 1, "{c}");
        // The tiny benchmark's loop alone is thousands of instructions on either ISA.
        let per_loop = k["per_value"].as_f64().unwrap() / k["loops"].as_f64().unwrap();
        assert!(per_loop > 10_000.0, "{c}");
        if id.contains("ferrojit") {
            let generated = k["generated_per_value"].as_u64().unwrap();
            assert!(generated > 0, "the loop runs compiled: {c}");
        } else {
            assert!(k["generated_per_value"].is_null(), "{c}");
        }
    }
    let within = &s["comparisons"][0];
    let across = &s["comparisons"][1];
    let native = &s["comparisons"][2];
    for cmp in [within, across] {
        assert!(
            ["holds", "fails"].contains(&cmp["verdict"].as_str().unwrap()),
            "{cmp}"
        );
        assert!(
            cmp["reason"]
                .as_str()
                .unwrap()
                .contains("executed instructions"),
            "the emulated host's verdict comes from the counts: {cmp}"
        );
        assert!(cmp["counts"]["geomean"].as_f64().unwrap() > 0.0, "{cmp}");
    }
    // A tiny target: AArch64 executes the same loop in roughly as many instructions.
    assert_eq!(across["verdict"], "holds", "{across}");
    assert!(
        across["geomean"].is_null(),
        "no speed figure across hosts: {across}"
    );
    // Without an emulated host the timings decide; the counts are shown alongside.
    assert!(
        !native["reason"]
            .as_str()
            .unwrap()
            .contains("executed instructions"),
        "{native}"
    );
    assert!(
        native["counts"]["per_benchmark"][0]["ratio"]
            .as_f64()
            .is_some(),
        "{native}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("## Executed instructions"), "{stdout}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("<h2>Executed instructions</h2>"));
}

#[test]
fn a_bad_configuration_is_refused_with_the_line_and_a_suggestion() {
    let work = tempfile::tempdir().unwrap();
    let cfg = write_config(work.path(), "[settings]\nprocesses = 4\nrounds = 2\n[hosts.x]\nkind = \"local\"\nwrokdir = \"/tmp\"\n[runtimes.c]\nkind = \"cpython\"\n");
    let o = lab()
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("line 6")
            && out.contains("unknown field `wrokdir`")
            && out.contains("did you mean `workdir`?"),
        "{out}"
    );
    let o = lab()
        .args(["run", "--resume", "/nonexistent/run"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("is not a lab run folder"), "{}", text(&o));
    let o = lab().args(["run", "--bogus"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "clap refuses unknown options");
}
