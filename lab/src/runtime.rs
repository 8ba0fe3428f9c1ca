//! Runtimes on a host: the recipe that sets one up (a venv with pinned pyperf and pyperformance,
//! plus ferrojit or cinderx), the check that says what is there and what is missing, and the
//! interpreter and environment a benchmark runs with.
//!
//! Local and SSH hosts get a venv per runtime in `<workdir>/envs/<runtime>`, made with
//! `--system-site-packages` so that pinned packages the interpreter already has are reused, and
//! pip run only for what is missing or at another version. The emulated host uses the arm64
//! CPython and the package folder that `cargo xtask setup-arm64` made.

use crate::config::{RuntimeConfig, RuntimeKind};
use crate::host::{Host, HostKind};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Pinned versions of the harness, the same on every host.
pub const PYPERF: &str = "pyperf==2.10.0";
pub const PYPERFORMANCE: &str = "pyperformance==1.14.0";

/// How one runtime runs on one host.
#[derive(Debug, Clone, Serialize)]
pub struct Recipe {
    pub runtime: String,
    pub kind: RuntimeKind,
    /// The interpreter that runs benchmarks (after set-up), or the command's argv for kind
    /// "command".
    pub argv: Vec<String>,
    /// Environment for the benchmark and its pyperf workers.
    pub env: BTreeMap<String, String>,
    /// Shell lines that create or repair the environment; idempotent.
    pub setup: Vec<String>,
    /// A folder to copy to the host first (ferrojit's wheel for the host's ISA), and where.
    pub upload: Option<(PathBuf, String)>,
    /// The interpreter the venv is made from, if there is a venv.
    pub base: Option<String>,
}

/// Which ISA folder of ferrojit a host needs.
pub fn isa_of(arch: &str) -> Result<&'static str> {
    match arch {
        "x86_64" | "amd64" => Ok("x86_64"),
        "aarch64" | "arm64" => Ok("aarch64"),
        other => bail!("ferrojit has no backend for {other}"),
    }
}

/// ferrojit's wheel for an ISA, made by `cargo xtask wheel --arch ISA` (the folder holds one).
pub fn ferrojit_wheels(isa: &str) -> PathBuf {
    repo_root().join("target/wheels").join(isa)
}

/// Whether a wheel folder holds a wheel.
pub fn has_wheel(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().extension().is_some_and(|x| x == "whl"))
    })
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn recipe(name: &str, rt: &RuntimeConfig, host: &Host, arch: &str) -> Result<Recipe> {
    // The emulated host shares this machine's file system (and often the local host's workdir):
    // its venvs get their own names.
    let env_dir = match host.kind {
        HostKind::Emulated { .. } => format!("{}/envs/arm64-{}", host.workdir, name),
        _ => format!("{}/envs/{}", host.workdir, name),
    };
    let mut env: BTreeMap<String, String> = rt.env.clone();
    let mut setup = Vec::new();
    let mut upload = None;
    let mut base_python = None;
    let configured = rt.python_on.get(&host.name).or(rt.python.as_ref()).cloned();
    let argv = match (&host.kind, rt.kind) {
        (_, RuntimeKind::Command) => rt.command.clone(),
        (HostKind::Emulated { root }, RuntimeKind::Cpython) => {
            env.insert("PYTHONPATH".into(), emulated_site(root));
            vec![emulated_python(root)]
        }
        (HostKind::Emulated { root }, RuntimeKind::Ferrojit) => {
            // A venv of the arm64 CPython to install the wheel into (pip itself runs on the
            // host and starts the arm64 interpreter to install); pyperf comes from the site folder.
            env.insert("PYTHONPATH".into(), emulated_site(root));
            let base = emulated_python(root);
            let qemu = format!("QEMU_LD_PREFIX=\"{}\"", root.join("sysroot").display());
            setup.push(format!("[ -x \"{env_dir}/bin/python\" ] || {qemu} \"{base}\" -m venv --without-pip \"{env_dir}\""));
            base_python = Some(base);
            vec![format!("{env_dir}/bin/python")]
        }
        (HostKind::Emulated { .. }, kind) => {
            bail!("runtime {name}: kind {kind:?} cannot run on the emulated arm64 host")
        }
        (_, kind) => {
            let base = configured.unwrap_or_else(|| default_python(kind).to_string());
            let mut packages = vec![PYPERF.to_string(), PYPERFORMANCE.to_string()];
            if kind == RuntimeKind::Cinderx {
                packages.push("cinderx".into());
            }
            setup.push(format!("[ -x \"{env_dir}/bin/python\" ] || {base} -m venv --system-site-packages \"{env_dir}\""));
            base_python = Some(base);
            setup.push(pip_missing(&env_dir, &packages));
            vec![format!("{env_dir}/bin/python")]
        }
    };
    if rt.kind == RuntimeKind::Ferrojit {
        // The wheel for the host's ISA is copied over and pip-installed into the runtime's venv
        // (pip checks its tags against the interpreter); its .pth file switches the JIT on in
        // every process of the venv that has FERROJIT=1, pyperf's workers included.
        let isa = isa_of(arch)?;
        let dest = format!("{}/ferrojit/{isa}", host.workdir);
        let python = format!("{env_dir}/bin/python");
        let pip = match &host.kind {
            HostKind::Emulated { root } => format!(
                "QEMU_LD_PREFIX=\"{}\" python3 -m pip --python \"{python}\"",
                root.join("sysroot").display()
            ),
            _ => format!("\"{python}\" -m pip"),
        };
        setup.push(format!("{pip} install -q --disable-pip-version-check --no-deps --no-index --force-reinstall \"{dest}\"/*.whl"));
        env.insert("FERROJIT".into(), "1".into());
        upload = Some((ferrojit_wheels(isa), dest));
    }
    Ok(Recipe {
        runtime: name.to_string(),
        kind: rt.kind,
        argv,
        env,
        setup,
        upload,
        base: base_python,
    })
}

fn emulated_python(root: &Path) -> String {
    root.join("sysroot/usr/bin/python3.11")
        .display()
        .to_string()
}

fn emulated_site(root: &Path) -> String {
    root.join("site").display().to_string()
}

fn default_python(kind: RuntimeKind) -> &'static str {
    match kind {
        RuntimeKind::Cpython | RuntimeKind::Ferrojit => "python3.11",
        RuntimeKind::Cinderx => "python3.14",
        RuntimeKind::Pypy => "pypy3",
        RuntimeKind::Command => "",
    }
}

/// A shell line that pip-installs the pinned packages the venv lacks (or has at another version).
fn pip_missing(env_dir: &str, packages: &[String]) -> String {
    let list = packages
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "missing=$(\"{env_dir}/bin/python\" - <<'EOF'\n\
         from importlib import metadata\n\
         for spec in [{list}]:\n\
         \x20   name, _, version = spec.partition('==')\n\
         \x20   try:\n\
         \x20       ok = not version or metadata.version(name) == version\n\
         \x20   except metadata.PackageNotFoundError:\n\
         \x20       ok = False\n\
         \x20   if not ok:\n\
         \x20       print(spec)\n\
         EOF\n\
         ); [ -z \"$missing\" ] || \"{env_dir}/bin/python\" -m pip install -q --disable-pip-version-check $missing"
    )
}

impl Recipe {
    /// `export` lines for the environment.
    pub fn exports(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| format!("export {k}=\"{v}\"\n"))
            .collect()
    }

    /// A script that prints what the runtime is on the host (`version=...`, `pyperf=...`,
    /// `ferrojit=...`) and `missing=...` lines for what set-up would add.
    pub fn check_script(&self) -> String {
        let py = shell_words(&self.argv);
        let mut s = self.exports();
        s.push_str("set +e\n");
        let first = self.argv.first().map(|s| s.as_str()).unwrap_or("");
        let absent = match &self.base {
            Some(base) => {
                s.push_str(&format!("command -v \"{base}\" >/dev/null 2>&1 || echo \"missing=interpreter {base}\"\n"));
                format!("environment {first} (bootstrap creates it)")
            }
            None => format!("interpreter {first}"),
        };
        s.push_str(&format!("{py} -c 'import sys; print(\"version=\" + sys.version.split()[0])' 2>/dev/null || echo \"missing={absent}\"\n"));
        if self.kind != RuntimeKind::Command {
            s.push_str(&format!(
                "{py} -c 'import pyperf, pyperformance; print(\"pyperf=\" + pyperf.__version__); print(\"pyperformance=\" + pyperformance.__version__)' 2>/dev/null || echo 'missing=pyperf and pyperformance (bootstrap installs {PYPERF} {PYPERFORMANCE})'\n"
            ));
        }
        if self.kind == RuntimeKind::Ferrojit {
            s.push_str(&format!(
                "{py} -c 'import ferrojit, sys; print(\"ferrojit=\" + ferrojit._ferrojit.__file__)' 2>/dev/null || echo 'missing=ferrojit for this ISA (bootstrap installs its wheel)'\n"
            ));
        }
        if self.kind == RuntimeKind::Cinderx {
            s.push_str(&format!("{py} -c 'import cinderx; print(\"cinderx=\" + cinderx.__file__)' 2>/dev/null || echo 'missing=cinderx (bootstrap installs it)'\n"));
        }
        s
    }
}

/// Joins argv for a shell line (each word double-quoted, `$HOME` still expanding).
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| format!("\"{}\"", a.replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostConfig;

    fn rt(kind: RuntimeKind) -> RuntimeConfig {
        RuntimeConfig::of_kind(kind)
    }

    fn ssh_host() -> Host {
        let cfg = HostConfig::Ssh {
            destination: "me@arm".into(),
            port: None,
            options: vec![],
            workdir: None,
        };
        Host::new(
            "arm",
            &cfg,
            "~/.cache/ferrojit-lab".into(),
            Path::new("/tmp"),
        )
    }

    #[test]
    fn the_cinderx_recipe_installs_the_wheel_into_a_python_3_14_venv_and_passes_its_knobs() {
        let mut c = rt(RuntimeKind::Cinderx);
        c.env.insert("CINDERX_JIT_AUTO".into(), "1".into());
        let r = recipe("cinderx", &c, &ssh_host(), "x86_64").unwrap();
        assert_eq!(
            r.argv,
            vec!["$HOME/.cache/ferrojit-lab/envs/cinderx/bin/python"]
        );
        assert!(r.setup[0].contains("python3.14 -m venv --system-site-packages \"$HOME/.cache/ferrojit-lab/envs/cinderx\""), "{:?}", r.setup);
        assert!(
            r.setup[1].contains("'cinderx'")
                && r.setup[1].contains(PYPERF)
                && r.setup[1].contains("pip install"),
            "{:?}",
            r.setup
        );
        assert_eq!(r.env.get("CINDERX_JIT_AUTO").map(|s| s.as_str()), Some("1"));
        assert!(r.check_script().contains("import cinderx"));
    }

    #[test]
    fn the_ferrojit_recipe_ships_the_build_for_the_hosts_isa() {
        let r = recipe(
            "ferrojit",
            &rt(RuntimeKind::Ferrojit),
            &ssh_host(),
            "aarch64",
        )
        .unwrap();
        let (local, dest) = r.upload.clone().unwrap();
        assert!(local.ends_with("target/wheels/aarch64"), "{local:?}");
        assert_eq!(dest, "$HOME/.cache/ferrojit-lab/ferrojit/aarch64");
        let install = r.setup.last().unwrap();
        assert!(
            install.starts_with(
                "\"$HOME/.cache/ferrojit-lab/envs/ferrojit/bin/python\" -m pip install"
            ) && install.ends_with(&format!("\"{dest}\"/*.whl")),
            "{install}"
        );
        assert!(!r.env.contains_key("PYTHONPATH"), "{:?}", r.env);
        assert_eq!(r.env["FERROJIT"], "1");
        assert!(recipe(
            "ferrojit",
            &rt(RuntimeKind::Ferrojit),
            &ssh_host(),
            "riscv64"
        )
        .is_err());
    }

    #[test]
    fn the_emulated_host_uses_the_arm64_cpython_and_refuses_other_kinds() {
        let cfg = HostConfig::Emulated {
            root: Some("/opt/arm64".into()),
            workdir: None,
        };
        let h = Host::new("emu", &cfg, "/tmp/w".into(), Path::new("/tmp"));
        let r = recipe("cpython", &rt(RuntimeKind::Cpython), &h, "aarch64").unwrap();
        assert_eq!(r.argv, vec!["/opt/arm64/sysroot/usr/bin/python3.11"]);
        assert_eq!(r.env["PYTHONPATH"], "/opt/arm64/site");
        assert!(r.setup.is_empty());
        let f = recipe("ferrojit", &rt(RuntimeKind::Ferrojit), &h, "aarch64").unwrap();
        assert_eq!(f.argv, vec!["/tmp/w/envs/arm64-ferrojit/bin/python"]);
        assert!(
            f.setup[0].contains("/opt/arm64/sysroot/usr/bin/python3.11\" -m venv --without-pip"),
            "{:?}",
            f.setup
        );
        assert!(
            f.setup[1].contains("QEMU_LD_PREFIX=\"/opt/arm64/sysroot\" python3 -m pip --python"),
            "{:?}",
            f.setup
        );
        assert_eq!(f.env["PYTHONPATH"], "/opt/arm64/site");
        assert!(recipe("pypy", &rt(RuntimeKind::Pypy), &h, "aarch64").is_err());
    }
}
