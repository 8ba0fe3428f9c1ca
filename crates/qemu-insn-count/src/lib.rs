//! A qemu-user TCG plugin that counts the guest instructions a process executes: all of them,
//! and those in ferrojit's generated code. `cargo xtask count --arch` loads it into
//! `qemu-aarch64` and `qemu-x86_64` alike, so both ISAs are counted by one tool on one host.
//!
//! Each translation block gets a counter that the translated code itself bumps when the block
//! runs (an inline add, no call out of the generated host code); at exit the plugin sums
//! runs x instructions over all blocks, and over the blocks that lie in the ranges of a
//! perf map (`FERROJIT_PERF_MAP=1` makes ferrojit list each compiled function's code there),
//! and writes both as JSON.
//!
//! Arguments (`-plugin LIB,out=PATH,perf_map=PATH`): `out` is the JSON file to write (default:
//! standard error); `perf_map` the map to read at exit, `auto` for `/tmp/perf-<pid>.map`, or
//! `consume` for that file, removed once read (so a later process with the same pid starts
//! from an empty map).
//! A block that ends early (a fault in its middle) counts whole; blocks of code freed and
//! replaced at the same address count under whichever code was there when they ran.
//!
//! Only the plugin ABI of qemu 7.2 (plugin API version 1) that this needs is declared here.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt::Write as _;
use std::sync::Mutex;

/// The plugin API version this plugin was written against (qemu refuses a plugin it does not
/// support, with a message).
#[no_mangle]
pub static qemu_plugin_version: c_int = 1;

type PluginId = u64;

/// qemu's opaque translation block handle.
#[repr(C)]
pub struct QemuTb {
    _opaque: [u8; 0],
}

/// `QEMU_PLUGIN_INLINE_ADD_U64`, the one inline operation of API version 1.
const INLINE_ADD_U64: c_int = 0;

extern "C" {
    fn qemu_plugin_register_vcpu_tb_trans_cb(
        id: PluginId,
        cb: extern "C" fn(PluginId, *mut QemuTb),
    );
    fn qemu_plugin_register_atexit_cb(
        id: PluginId,
        cb: extern "C" fn(PluginId, *mut c_void),
        userdata: *mut c_void,
    );
    fn qemu_plugin_tb_n_insns(tb: *const QemuTb) -> usize;
    fn qemu_plugin_tb_vaddr(tb: *const QemuTb) -> u64;
    fn qemu_plugin_register_vcpu_tb_exec_inline(
        tb: *mut QemuTb,
        op: c_int,
        ptr: *mut c_void,
        imm: u64,
    );
}

/// One translated block: where it starts, its instructions, and how often it ran (bumped by
/// the translated code).
#[derive(Debug)]
pub struct Block {
    pub vaddr: u64,
    pub insns: u64,
    pub runs: u64,
}

struct State {
    blocks: Vec<&'static mut Block>,
    out: Option<String>,
    perf_map: Option<String>,
    remove_map: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    blocks: Vec::new(),
    out: None,
    perf_map: None,
    remove_map: false,
});

/// Entry point qemu calls when it loads the plugin.
///
/// # Safety
/// Called by qemu with `argc` valid C strings in `argv`.
#[no_mangle]
pub unsafe extern "C" fn qemu_plugin_install(
    id: PluginId,
    _info: *const c_void,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..argc.max(0) as usize {
        // SAFETY: qemu passes argc NUL-terminated strings.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) }.to_string_lossy();
        match arg.split_once('=') {
            Some(("out", v)) => state.out = Some(v.to_string()),
            Some(("perf_map", v @ ("auto" | "consume"))) => {
                state.perf_map = Some(format!("/tmp/perf-{}.map", std::process::id()));
                state.remove_map = v == "consume";
            }
            Some(("perf_map", v)) => state.perf_map = Some(v.to_string()),
            _ => {
                eprintln!("insn-count: unknown argument {arg:?} (want out=PATH or perf_map=PATH|auto|consume)");
                return -1;
            }
        }
    }
    // SAFETY: registering callbacks with the id qemu gave us.
    unsafe {
        qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
        qemu_plugin_register_atexit_cb(id, on_exit, std::ptr::null_mut());
    }
    0
}

extern "C" fn on_translate(_id: PluginId, tb: *mut QemuTb) {
    // SAFETY: `tb` is the block qemu is translating, valid during this callback.
    let (vaddr, insns) = unsafe { (qemu_plugin_tb_vaddr(tb), qemu_plugin_tb_n_insns(tb) as u64) };
    let block: &'static mut Block = Box::leak(Box::new(Block {
        vaddr,
        insns,
        runs: 0,
    }));
    let runs = &mut block.runs as *mut u64 as *mut c_void;
    // SAFETY: the counter is leaked, so it outlives every run of the translated block.
    unsafe { qemu_plugin_register_vcpu_tb_exec_inline(tb, INLINE_ADD_U64, runs, 1) };
    STATE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .blocks
        .push(block);
}

extern "C" fn on_exit(_id: PluginId, _: *mut c_void) {
    let state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let ranges = state
        .perf_map
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| parse_perf_map(&text))
        .unwrap_or_default();
    if let (true, Some(map)) = (state.remove_map, &state.perf_map) {
        let _ = std::fs::remove_file(map);
    }
    let blocks: Vec<&Block> = state.blocks.iter().map(|b| &**b).collect();
    let counts = count(&blocks, &ranges);
    let json = counts.to_json(state.perf_map.is_some(), ranges.len());
    match &state.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, json) {
                eprintln!("insn-count: cannot write {path}: {e}");
            }
        }
        None => eprintln!("{json}"),
    }
}

/// What a run executed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub instructions: u64,
    pub generated_instructions: u64,
    pub blocks: u64,
}

impl Counts {
    fn to_json(&self, with_map: bool, functions: usize) -> String {
        let mut s = format!(
            "{{\"instructions\": {}, \"translated_blocks\": {}",
            self.instructions, self.blocks
        );
        if with_map {
            let _ = write!(
                s,
                ", \"generated_instructions\": {}, \"generated_ranges\": {functions}",
                self.generated_instructions
            );
        }
        s.push_str("}\n");
        s
    }
}

/// The `(start, end)` address ranges of a perf map's lines (`START SIZE NAME`, hex), sorted.
pub fn parse_perf_map(text: &str) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let start = u64::from_str_radix(words.next()?, 16).ok()?;
            let size = u64::from_str_radix(words.next()?, 16).ok()?;
            Some((start, start.checked_add(size)?))
        })
        .collect();
    ranges.sort_unstable();
    ranges
}

/// Whether `addr` lies in one of the sorted `ranges`.
fn covered(ranges: &[(u64, u64)], addr: u64) -> bool {
    // The last range starting at or before addr, and any earlier one reaching past it (ranges
    // of freed and reused code may nest).
    let upto = ranges.partition_point(|r| r.0 <= addr);
    ranges[..upto].iter().rev().any(|r| addr < r.1)
}

/// Instructions executed in all `blocks`, and in those starting inside `ranges`.
pub fn count(blocks: &[&Block], ranges: &[(u64, u64)]) -> Counts {
    let mut c = Counts {
        blocks: blocks.len() as u64,
        ..Counts::default()
    };
    for b in blocks {
        let n = b.runs * b.insns;
        c.instructions += n;
        if covered(ranges, b.vaddr) {
            c.generated_instructions += n;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_map_lines_become_sorted_ranges() {
        let map = "7f0000002000 40 py::b\n7f0000001000 100 py::a\nnot a line\n";
        assert_eq!(
            parse_perf_map(map),
            vec![
                (0x7f00_0000_1000, 0x7f00_0000_1100),
                (0x7f00_0000_2000, 0x7f00_0000_2040)
            ]
        );
    }

    #[test]
    fn blocks_count_runs_times_instructions_and_those_in_generated_code_apart() {
        let ranges = vec![(0x1000, 0x1100), (0x2000, 0x2040)];
        let a = Block {
            vaddr: 0x1080,
            insns: 5,
            runs: 10,
        };
        let b = Block {
            vaddr: 0x1100,
            insns: 3,
            runs: 7,
        };
        let c = Block {
            vaddr: 0x2000,
            insns: 2,
            runs: 1,
        };
        let d = Block {
            vaddr: 0x500,
            insns: 4,
            runs: 0,
        };
        let counts = count(&[&a, &b, &c, &d], &ranges);
        assert_eq!(
            counts,
            Counts {
                instructions: 50 + 21 + 2,
                generated_instructions: 52,
                blocks: 4
            }
        );
    }

    #[test]
    fn a_range_nested_in_a_longer_earlier_one_still_covers() {
        let ranges = vec![(0x1000, 0x3000), (0x1800, 0x1900)];
        assert!(covered(&ranges, 0x2000));
        assert!(covered(&ranges, 0x1850));
        assert!(!covered(&ranges, 0x3000));
        assert!(!covered(&[], 0x3000));
    }
}
