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
//! from an empty map); `hot` a text file to write the hottest blocks of generated code to,
//! each with its function (from the perf map), runs and disassembly (the plugin then
//! disassembles every block it translates, which makes translation slower); `hot_top` how many
//! (default 40).
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

/// qemu's opaque instruction handle.
#[repr(C)]
pub struct QemuInsn {
    _opaque: [u8; 0],
}

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
    fn qemu_plugin_tb_get_insn(tb: *const QemuTb, idx: usize) -> *mut QemuInsn;
    fn qemu_plugin_insn_disas(insn: *const QemuInsn) -> *mut c_char;
    fn free(p: *mut c_void);
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
    /// Its instructions' disassembly (only with `hot`).
    pub disassembly: Vec<String>,
}

struct State {
    blocks: Vec<&'static mut Block>,
    out: Option<String>,
    perf_map: Option<String>,
    remove_map: bool,
    hot: Option<String>,
    hot_top: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    blocks: Vec::new(),
    out: None,
    perf_map: None,
    remove_map: false,
    hot: None,
    hot_top: 40,
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
            Some(("hot", v)) => state.hot = Some(v.to_string()),
            Some(("hot_top", v)) if v.parse::<usize>().is_ok() => {
                state.hot_top = v.parse().unwrap_or(40)
            }
            _ => {
                eprintln!("insn-count: unknown argument {arg:?} (want out=PATH, perf_map=PATH|auto|consume, hot=PATH or hot_top=N)");
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
    let wants_disassembly = STATE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .hot
        .is_some();
    let disassembly = match wants_disassembly {
        true => (0..insns as usize).map(|i| disassemble(tb, i)).collect(),
        false => Vec::new(),
    };
    let block: &'static mut Block = Box::leak(Box::new(Block {
        vaddr,
        insns,
        runs: 0,
        disassembly,
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

/// The text of instruction `i` of `tb`.
fn disassemble(tb: *mut QemuTb, i: usize) -> String {
    // SAFETY: `tb` is valid during the translation callback and `i` below its instruction
    // count; qemu returns a string allocated with malloc (g_strdup), ours to free.
    unsafe {
        let text = qemu_plugin_insn_disas(qemu_plugin_tb_get_insn(tb, i));
        if text.is_null() {
            return "?".into();
        }
        let s = CStr::from_ptr(text).to_string_lossy().into_owned();
        free(text as *mut c_void);
        s
    }
}

extern "C" fn on_exit(_id: PluginId, _: *mut c_void) {
    let state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let map_text = (state.perf_map.as_deref())
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let ranges = parse_perf_map(&map_text);
    if let (true, Some(map)) = (state.remove_map, &state.perf_map) {
        let _ = std::fs::remove_file(map);
    }
    let blocks: Vec<&Block> = state.blocks.iter().map(|b| &**b).collect();
    let counts = count(&blocks, &ranges);
    if let Some(path) = &state.hot {
        let text = hot_blocks(&blocks, &named_ranges(&map_text), state.hot_top);
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("insn-count: cannot write {path}: {e}");
        }
    }
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

/// The `(start, end, name)` of a perf map's lines, sorted.
pub fn named_ranges(text: &str) -> Vec<(u64, u64, String)> {
    let mut ranges: Vec<(u64, u64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut words = l.splitn(3, ' ');
            let start = u64::from_str_radix(words.next()?, 16).ok()?;
            let size = u64::from_str_radix(words.next()?, 16).ok()?;
            Some((start, start.checked_add(size)?, words.next()?.to_string()))
        })
        .collect();
    ranges.sort_unstable();
    ranges
}

/// The hottest blocks in generated code, most executed instructions first: each block's share
/// of the generated total, runs x instructions, its function and offset, and its disassembly.
/// Blocks translated more than once at one address count together.
pub fn hot_blocks(blocks: &[&Block], ranges: &[(u64, u64, String)], top: usize) -> String {
    let mut by_address: std::collections::BTreeMap<u64, (u64, &Block)> = Default::default();
    for b in blocks {
        let upto = ranges.partition_point(|r| r.0 <= b.vaddr);
        if ranges[..upto].iter().rev().any(|r| b.vaddr < r.1) {
            by_address.entry(b.vaddr).or_insert((0, b)).0 += b.runs;
        }
    }
    let executed = |(runs, b): &(u64, &Block)| runs * b.insns;
    let total: u64 = by_address.values().map(executed).sum();
    let mut hot: Vec<(u64, &Block)> = by_address.into_values().collect();
    hot.sort_by_key(|h| std::cmp::Reverse(executed(h)));
    let mut s =
        format!("# the hottest blocks of generated code: {total} instructions executed there\n");
    for h @ (runs, b) in hot.iter().take(top) {
        let upto = ranges.partition_point(|r| r.0 <= b.vaddr);
        let place = (ranges[..upto].iter().rev().find(|r| b.vaddr < r.1))
            .map(|r| format!("{}+{:#x}", short_name(&r.2), b.vaddr - r.0))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "\n{:6.2}% {} = {runs} x {}  {place}",
            100.0 * executed(h) as f64 / total.max(1) as f64,
            executed(h),
            b.insns
        );
        for line in &b.disassembly {
            let _ = writeln!(s, "    {line}");
        }
    }
    s
}

/// A perf map name without the folders of its file (`py::/a/b/bm.py:f` is `bm.py:f`).
fn short_name(name: &str) -> &str {
    let file_end = name.rfind(':').unwrap_or(name.len());
    match name[..file_end].rfind('/') {
        Some(slash) => &name[slash + 1..],
        None => name,
    }
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
            disassembly: vec![],
        };
        let b = Block {
            vaddr: 0x1100,
            insns: 3,
            runs: 7,
            disassembly: vec![],
        };
        let c = Block {
            vaddr: 0x2000,
            insns: 2,
            runs: 1,
            disassembly: vec![],
        };
        let d = Block {
            vaddr: 0x500,
            insns: 4,
            runs: 0,
            disassembly: vec![],
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

    #[test]
    fn hot_blocks_name_their_function_and_sum_retranslations() {
        let map = "1000 100 py::Task.fn\n2000 40 py::main\n";
        let ranges = named_ranges(map);
        assert_eq!(ranges[0], (0x1000, 0x1100, "py::Task.fn".to_string()));
        let block = |vaddr, insns, runs, text: &str| Block {
            vaddr,
            insns,
            runs,
            disassembly: vec![text.to_string()],
        };
        let (a, a_again) = (
            block(0x1040, 2, 10, "ldr x0, [x19]"),
            block(0x1040, 2, 5, "ldr x0, [x19]"),
        );
        let (b, outside) = (block(0x2000, 1, 100, "ret"), block(0x500, 9, 1000, "nop"));
        let text = hot_blocks(&[&a, &a_again, &b, &outside], &ranges, 1);
        assert!(
            text.starts_with("# the hottest blocks of generated code: 130 instructions"),
            "{text}"
        );
        assert!(
            text.contains("76.92% 100 = 100 x 1  py::main+0x0\n    ret\n"),
            "{text}"
        );
        assert!(!text.contains("Task.fn"), "only the top 1: {text}");
        let text = hot_blocks(&[&a, &a_again, &b, &outside], &ranges, 5);
        assert!(text.contains("30 = 15 x 2  py::Task.fn+0x40"), "{text}");
        assert!(!text.contains("nop"), "{text}");
    }
}
