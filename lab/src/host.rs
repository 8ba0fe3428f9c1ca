//! Hosts: running shell scripts on this machine, on a machine over SSH, or on this machine for
//! the emulated arm64 host; copying files there and back; probing what a host is.
//!
//! Every action is a POSIX `sh` script fed on standard input (`sh -s` locally, `ssh DEST sh -s`
//! remotely), so nothing is quoted twice. SSH goes through the system's OpenSSH client with
//! `BatchMode` (never a password prompt) and one master connection per host (`ControlMaster`),
//! so a run's hundreds of commands do not each pay for a handshake.

use crate::config::{emulated_root, HostConfig};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A host ready to run things.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub kind: HostKind,
    /// Scratch and environment folder on the host (`~` expanded by the host's shell).
    pub workdir: String,
}

#[derive(Debug, Clone)]
pub enum HostKind {
    Local,
    Ssh {
        destination: String,
        port: Option<u16>,
        options: Vec<String>,
        control: PathBuf,
    },
    Emulated {
        root: PathBuf,
    },
}

/// What a script printed, and how it ended.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The failure of a host to run anything at all (as opposed to a command failing on it).
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

impl Host {
    pub fn new(name: &str, config: &HostConfig, workdir: String, control_dir: &Path) -> Host {
        let kind = match config {
            HostConfig::Local { .. } => HostKind::Local,
            HostConfig::Ssh {
                destination,
                port,
                options,
                ..
            } => HostKind::Ssh {
                destination: destination.clone(),
                port: *port,
                options: options.clone(),
                control: control_dir.join(format!("ssh-{name}")),
            },
            HostConfig::Emulated { root, .. } => HostKind::Emulated {
                root: emulated_root(root),
            },
        };
        // `~` does not expand inside the double quotes scripts put paths in; $HOME does.
        let workdir = match workdir.strip_prefix("~/") {
            Some(rest) => format!("$HOME/{rest}"),
            None => workdir,
        };
        Host {
            name: name.to_string(),
            kind,
            workdir,
        }
    }

    pub fn emulated(&self) -> bool {
        matches!(self.kind, HostKind::Emulated { .. })
    }

    /// Runs `script` with `sh` on the host (the script is the whole of standard input). Fails with
    /// [`Unreachable`] when the host cannot be reached.
    pub fn sh(&self, script: &str) -> Result<Output> {
        let mut cmd = self.shell_command();
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "host {}: could not start {:?}",
                self.name,
                cmd.get_program()
            )
        })?;
        let full = format!("{}\n{}", self.prelude(), script);
        child.stdin.take().unwrap().write_all(full.as_bytes()).ok();
        let out = child.wait_with_output()?;
        let o = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if matches!(self.kind, HostKind::Ssh { .. }) && o.code == 255 {
            return Err(Unreachable(format!(
                "host {}: ssh failed: {}",
                self.name,
                o.stderr.trim()
            ))
            .into());
        }
        Ok(o)
    }

    /// Runs `script` and returns its standard output, failing with its standard error.
    pub fn sh_ok(&self, script: &str) -> Result<String> {
        let o = self.sh(script)?;
        if o.code != 0 {
            bail!(
                "host {}: command failed ({}): {}",
                self.name,
                o.code,
                tail(&o.stderr, 2000)
            );
        }
        Ok(o.stdout)
    }

    /// Copies a local folder's contents into `dest` on the host (replacing it), as a tar stream
    /// on standard input; the command itself is a one-line argument here.
    pub fn upload_dir(&self, local: &Path, dest: &str) -> Result<()> {
        let tar = Command::new("tar")
            .arg("-C")
            .arg(local)
            .args(["-cf", "-", "."])
            .output()
            .context("tar")?;
        if !tar.status.success() {
            bail!("tar of {} failed", local.display());
        }
        if dest.contains('\'') || dest.contains('"') {
            bail!("host {}: unsupported characters in {dest:?}", self.name);
        }
        let line = format!("rm -rf \"{dest}\" && mkdir -p \"{dest}\" && tar -xf - -C \"{dest}\"");
        let mut cmd = self.command_line(&line);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        child.stdin.take().unwrap().write_all(&tar.stdout).ok();
        let out = child.wait_with_output()?;
        if matches!(self.kind, HostKind::Ssh { .. }) && out.status.code() == Some(255) {
            return Err(unreachable(format!(
                "host {}: ssh failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        if !out.status.success() {
            bail!(
                "host {}: upload to {dest} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Reads a file from the host.
    pub fn read_file(&self, path: &str) -> Result<String> {
        self.sh_ok(&format!("cat \"{path}\""))
    }

    /// Ends the SSH master connection, if any.
    pub fn close(&self) {
        if let HostKind::Ssh {
            destination,
            control,
            ..
        } = &self.kind
        {
            if control.exists() {
                let _ = Command::new("ssh")
                    .arg("-o")
                    .arg(format!("ControlPath={}", control.display()))
                    .args(["-O", "exit", destination])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }

    /// `sh -s` on the host: the script comes on standard input.
    fn shell_command(&self) -> Command {
        match &self.kind {
            HostKind::Ssh { .. } => self.command_line("sh -s"),
            HostKind::Local | HostKind::Emulated { .. } => {
                let mut c = Command::new("sh");
                c.arg("-s");
                c
            }
        }
    }

    /// A one-line shell command run on the host (`sh -c` here, the login shell over SSH).
    fn command_line(&self, line: &str) -> Command {
        match &self.kind {
            HostKind::Local | HostKind::Emulated { .. } => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(line);
                c
            }
            HostKind::Ssh {
                destination,
                port,
                options,
                control,
            } => {
                let mut c = Command::new("ssh");
                c.args([
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "ConnectTimeout=10",
                    "-o",
                    "ServerAliveInterval=5",
                    "-o",
                    "ServerAliveCountMax=2",
                ]);
                c.args(["-o", "ControlMaster=auto", "-o", "ControlPersist=120"]);
                c.arg("-o")
                    .arg(format!("ControlPath={}", control.display()));
                if let Some(p) = port {
                    c.args(["-p", &p.to_string()]);
                }
                c.args(options).arg(destination).arg(line);
                c
            }
        }
    }

    /// Lines every script starts with: fail fast, and the emulated host's qemu settings.
    fn prelude(&self) -> String {
        let mut p = String::from("set -e\n");
        if let HostKind::Emulated { root } = &self.kind {
            p.push_str(&format!(
                "export QEMU_LD_PREFIX=\"{}\"\n",
                root.join("sysroot").display()
            ));
        }
        p
    }

    /// Probes the host: architecture, CPU, cores, OS, and the state that affects timing.
    pub fn probe(&self) -> Result<Probe> {
        let out = self.sh_ok(PROBE_SCRIPT)?;
        let mut kv: BTreeMap<String, String> = out
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut get = |k: &str| {
            kv.remove(k)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "unknown".to_string())
        };
        let mut p = Probe {
            arch: get("arch"),
            cpu: get("cpu"),
            cores: get("cores").parse().unwrap_or(0),
            os: get("os"),
            kernel: get("kernel"),
            governor: get("governor"),
            turbo: get("turbo"),
            isolated: get("isolated"),
            load: get("load"),
            aslr: get("aslr"),
            emulated: false,
            emulator: None,
        };
        if let HostKind::Emulated { root } = &self.kind {
            // The machine is this one; the architecture is what the emulated interpreter sees.
            let py = root.join("sysroot/usr/bin/python3.11");
            if !py.exists() {
                bail!(
                    "host {}: no arm64 CPython at {} (run `cargo xtask setup-arm64`)",
                    self.name,
                    py.display()
                );
            }
            let arch = self.sh_ok(&format!(
                "\"{}\" -c 'import platform; print(platform.machine())'",
                py.display()
            ))?;
            p.arch = arch.trim().to_string();
            p.emulated = true;
            let v = Command::new("qemu-aarch64")
                .arg("--version")
                .output()
                .ok()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string()
                });
            p.emulator = v;
            p.cpu = format!("{} (emulated)", p.cpu);
        }
        Ok(p)
    }
}

/// A host's identity and timing-relevant state, recorded with every run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    pub arch: String,
    pub cpu: String,
    pub cores: u32,
    pub os: String,
    pub kernel: String,
    /// CPU frequency governor of CPU 0 (pyperf's `system tune` sets "performance").
    pub governor: String,
    /// "on", "off" or "unknown" (pyperf's `system tune` turns it off).
    pub turbo: String,
    /// Isolated CPUs (isolcpus), "" when none.
    pub isolated: String,
    /// 1, 5 and 15 minute load averages.
    pub load: String,
    /// kernel.randomize_va_space.
    pub aslr: String,
    pub emulated: bool,
    pub emulator: Option<String>,
}

impl Probe {
    /// What would make timings on this host less trustworthy, as warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.emulated {
            w.push("emulated: timings are not speed measurements; only within-host ratios and counts are reported".into());
        }
        if self.governor != "performance" && self.governor != "unknown" {
            w.push(format!(
                "CPU governor is {:?}: `pyperf system tune` would set \"performance\"",
                self.governor
            ));
        }
        if self.turbo == "on" {
            w.push("turbo boost is on: `pyperf system tune` would turn it off".into());
        }
        if self.isolated == "unknown" || self.isolated.is_empty() || self.isolated == "none" {
            w.push(
                "no isolated CPUs (isolcpus=): workers share CPUs with the rest of the system"
                    .into(),
            );
        }
        if let Some(load1) = self
            .load
            .split_whitespace()
            .next()
            .and_then(|l| l.parse::<f64>().ok())
        {
            if self.cores > 0 && load1 > 0.5 * self.cores as f64 {
                w.push(format!(
                    "load average {load1} is high for {} cores",
                    self.cores
                ));
            }
        }
        w
    }
}

const PROBE_SCRIPT: &str = r#"
echo "arch=$(uname -m)"
echo "kernel=$(uname -sr)"
echo "os=$( (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") || uname -s)"
echo "cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
cpu=$(grep -m1 -i -E '^(model name|cpu model|hardware)' /proc/cpuinfo 2>/dev/null | cut -d: -f2-)
[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | grep -m1 'Model name' | cut -d: -f2-)
echo "cpu=$cpu"
echo "governor=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null || echo unknown)"
if [ -r /sys/devices/system/cpu/intel_pstate/no_turbo ]; then
  [ "$(cat /sys/devices/system/cpu/intel_pstate/no_turbo)" = 1 ] && echo turbo=off || echo turbo=on
elif [ -r /sys/devices/system/cpu/cpufreq/boost ]; then
  [ "$(cat /sys/devices/system/cpu/cpufreq/boost)" = 1 ] && echo turbo=on || echo turbo=off
else
  echo turbo=unknown
fi
iso=$(cat /sys/devices/system/cpu/isolated 2>/dev/null || echo unknown)
echo "isolated=${iso:-none}"
echo "load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "aslr=$(cat /proc/sys/kernel/randomize_va_space 2>/dev/null || echo unknown)"
"#;

/// The last `n` bytes of `s` (on a character boundary).
pub fn tail(s: &str, n: usize) -> &str {
    let s = s.trim();
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Whether an error means the host could not be reached (rather than a command failing).
pub fn is_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Unreachable>().is_some())
}

pub fn unreachable(msg: String) -> anyhow::Error {
    anyhow!(Unreachable(msg))
}
