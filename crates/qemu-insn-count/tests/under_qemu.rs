//! The plugin loaded into a real `qemu-x86_64` (installed by `cargo xtask setup-arm64`): counts
//! grow with the work a program does, and a perf map's ranges select what counts as generated.

use std::path::PathBuf;
use std::process::Command;

/// The plugin cargo built for this test, beside it (`target/<profile>/deps/`).
fn plugin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let so = exe.with_file_name("libferrojit_qemu_insn_count.so");
    assert!(so.exists(), "no plugin at {}", so.display());
    so
}

/// `/bin/sh` running a shell loop of `n` rounds under the plugin; the JSON it wrote.
fn count(n: u32, extra: &str) -> serde_like::Counts {
    let out = std::env::temp_dir().join(format!("insn-count-test-{}-{n}.json", std::process::id()));
    let status = Command::new("qemu-x86_64")
        .arg("-plugin")
        .arg(format!(
            "{},out={}{extra}",
            plugin().display(),
            out.display()
        ))
        .args([
            "/bin/sh",
            "-c",
            &format!("i=0; while [ $i -lt {n} ]; do i=$((i+1)); done"),
        ])
        .status()
        .expect("qemu-x86_64 (qemu-user) is needed: cargo xtask setup-arm64 installs it");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).expect("the plugin wrote its counts");
    let _ = std::fs::remove_file(&out);
    serde_like::parse(&text)
}

#[test]
fn counts_grow_with_the_work_done() {
    let small = count(1_000, "");
    let large = count(11_000, "");
    assert!(small.instructions > 10_000, "{small:?}");
    // Ten thousand more rounds of a shell loop take well over ten instructions each.
    assert!(
        large.instructions > small.instructions + 100_000,
        "{small:?} {large:?}"
    );
    assert_eq!(small.generated, None, "no perf map asked for");
}

#[test]
fn a_perf_map_covering_everything_makes_every_instruction_generated() {
    let map = std::env::temp_dir().join(format!("insn-count-test-{}.map", std::process::id()));
    std::fs::write(&map, "0 7fffffffffffffff py::everything\n").unwrap();
    let c = count(100, &format!(",perf_map={}", map.display()));
    let _ = std::fs::remove_file(&map);
    assert_eq!(c.generated, Some(c.instructions));
}

/// The two numbers the tests read, without a JSON dependency.
mod serde_like {
    #[derive(Debug)]
    pub struct Counts {
        pub instructions: u64,
        pub generated: Option<u64>,
    }

    fn field(text: &str, name: &str) -> Option<u64> {
        let at = text.find(&format!("\"{name}\": "))? + name.len() + 4;
        let digits: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    }

    pub fn parse(text: &str) -> Counts {
        Counts {
            instructions: field(text, "instructions").expect("instructions"),
            generated: field(text, "generated_instructions"),
        }
    }
}
