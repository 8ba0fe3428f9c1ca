//! Executable memory, W^X: each compiled function gets its own pages, written while they are
//! read-write and then switched to read-execute before anything runs them, so no page is ever
//! writable and executable at once, and no running code sits on a page being written. On AArch64
//! the instruction cache is made coherent with the data written before the code runs.
//!
//! Code does not start at the first byte of its pages: each block starts at the next of 64 cache
//! line "colours" within a page. A level-1 instruction cache of 32 KiB with 8 ways indexes its
//! sets by address bits 6..12, so if every function started at a page boundary, the hot heads
//! of all of them would compete for the same few sets (callgrind's cache simulation of chaos
//! counted 17 times the interpreter's instruction-cache misses that way).
//!
//! Helper calls emitted as one PC-relative instruction (`near-calls`, see
//! `ferrojit_asm_core::CallLink`) are linked here, once the block's address is known: each
//! gets its helper's displacement when the helper is in reach, else the displacement of a
//! veneer laid out after the code in the same mapping (one per distinct far helper). To keep
//! helpers in reach, blocks come from a *code zone*: an address range reserved (no access, no
//! memory behind it) next to the extension's own code, from which each block maps its pages
//! and to which it gives them back. The extension's functions (the runtime's helpers) are then
//! always in reach; libpython's are when the interpreter's shared library lies within reach too
//! (pyenv's x86-64 build), and through veneers when it does not (Debian's arm64 `python3.11`,
//! which links libpython into an executable at a low address).

use crate::backend::{CallLink, Isa, NextCounter};
use std::collections::HashMap;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bytes of one colour step: an x86-64 and AArch64 cache line.
const COLOUR_STEP: usize = 64;
/// Colours in a 4 KiB page.
const COLOURS: usize = 64;
/// Blocks made so far: picks the next block's colour.
static BLOCKS_MADE: AtomicUsize = AtomicUsize::new(0);

/// Where the next block starts within its first page, in bytes: the colours are visited in an
/// order (a stride of 29, prime to 64) that puts consecutive blocks far apart, or always 0 when
/// `spread` is off.
fn next_colour_offset(spread: bool) -> usize {
    if !spread {
        return 0;
    }
    let n = BLOCKS_MADE.fetch_add(1, Ordering::Relaxed);
    (n * 29 % COLOURS) * COLOUR_STEP
}

/// Machine code installed in executable memory; unmapped (or given back to the code zone) on
/// drop.
pub struct CodeBlock {
    /// The first instruction (the mapping's start plus the block's colour offset).
    ptr: *mut u8,
    len: usize,
    /// The mapping: what `munmap` (or the zone) is given back.
    map: *mut u8,
    map_len: usize,
    /// The mapping lies in the code zone.
    zoned: bool,
}

// SAFETY: the block is immutable (read-execute) once built; only its address is shared.
unsafe impl Send for CodeBlock {}
// SAFETY: as above, nothing mutates it after construction.
unsafe impl Sync for CodeBlock {}

/// How the linked calls of an installed block were linked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Linked {
    /// Calls that reach their helper directly.
    pub direct: u32,
    /// Calls that go through a veneer.
    pub through_veneers: u32,
    /// Veneers laid out (one per distinct far helper).
    pub veneers: u32,
    /// The veneers' counters and instructions, when the code counts itself.
    pub counted: Vec<(usize, u32)>,
}

/// Bytes a veneer may take, its counting sequence included (each ISA's is checked against it).
const VENEER_ROOM: usize = 64;

impl CodeBlock {
    /// Copies `code` into fresh executable pages, at the next colour offset when `spread` is
    /// on (the `spread-code` optimisation), else at the start of the first page.
    pub fn new(code: &[u8], spread: bool) -> Result<CodeBlock, String> {
        Self::install(code, &[], spread, None).map(|(block, _)| block)
    }

    /// As [`CodeBlock::new`], in the code zone when it can be, with each of `links` (calls
    /// in `code`) linked to its helper or to a veneer after the code; veneers count their
    /// execution with counters from `counting`.
    pub fn install(
        code: &[u8],
        links: &[CallLink],
        spread: bool,
        counting: Option<NextCounter>,
    ) -> Result<(CodeBlock, Linked), String> {
        let page = page_size();
        let offset = next_colour_offset(spread) % page;
        // Room for a veneer per distinct helper, in case the block lands out of their reach;
        // pages of it that no veneer is written to are never touched, so cost no memory.
        let mut targets: Vec<u64> = links.iter().map(|l| l.target).collect();
        targets.sort_unstable();
        targets.dedup();
        let veneers_at = (offset + code.len()).next_multiple_of(16);
        let needed = veneers_at + targets.len() * VENEER_ROOM;
        let map_len = needed.max(1).div_ceil(page) * page;
        let (map, zoned) = map_pages(map_len)?;
        // SAFETY: offset + code.len() <= map_len, so the pointer stays within the mapping.
        let p = unsafe { map.add(offset) };
        // SAFETY: the mapping holds map_len writable bytes, shared with no one until it is
        // made executable below.
        let bytes = unsafe { std::slice::from_raw_parts_mut(map, map_len) };
        bytes[offset..offset + code.len()].copy_from_slice(code);
        let linked = link(
            &mut bytes[..needed],
            map as u64,
            offset,
            links,
            veneers_at,
            counting,
        );
        let block = CodeBlock {
            ptr: p,
            len: code.len(),
            map,
            map_len,
            zoned,
        };
        // SAFETY: map/map_len is exactly the mapping made above.
        if unsafe {
            libc::mprotect(
                map as *mut libc::c_void,
                map_len,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        } != 0
        {
            return Err(format!(
                "mprotect to read-execute failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        flush_icache(map, veneers_at + linked.veneers as usize * VENEER_ROOM);
        Ok((block, linked))
    }

    /// Address of the first instruction.
    pub fn addr(&self) -> usize {
        self.ptr as usize
    }

    /// Number of code bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The code bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping stays readable and holds `len` initialised bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for CodeBlock {
    fn drop(&mut self) {
        // Nobody runs the code any more: the owner drops it only when its code object dies.
        if self.zoned {
            zone_give_back(self.map, self.map_len);
        } else {
            // SAFETY: the mapping was made by `map_pages` and nothing refers to it any more.
            unsafe { libc::munmap(self.map as *mut libc::c_void, self.map_len) };
        }
    }
}

/// Links each of `links` in `bytes` (the mapping, at `base`, with the code at `offset`): to
/// its helper where in reach, else to a veneer laid out from `veneers_at` on.
fn link(
    bytes: &mut [u8],
    base: u64,
    offset: usize,
    links: &[CallLink],
    veneers_at: usize,
    counting: Option<NextCounter>,
) -> Linked {
    let isa = Isa::host();
    let mut linked = Linked::default();
    let mut veneers: HashMap<u64, u64> = HashMap::new();
    let mut next_veneer = veneers_at;
    for l in links {
        let at = offset + l.at;
        let at_address = base + at as u64;
        if isa.link_call(bytes, at, at_address, l.target) {
            linked.direct += 1;
            continue;
        }
        let veneer = *veneers.entry(l.target).or_insert_with(|| {
            let v = isa.veneer(l.target, counting);
            assert!(v.bytes.len() <= VENEER_ROOM, "a veneer outgrew its room");
            bytes[next_veneer..next_veneer + v.bytes.len()].copy_from_slice(&v.bytes);
            linked.counted.extend(v.counted);
            linked.veneers += 1;
            let address = base + next_veneer as u64;
            next_veneer += VENEER_ROOM;
            address
        });
        let reached = isa.link_call(bytes, at, at_address, veneer);
        assert!(reached, "a veneer in the same mapping is within reach");
        linked.through_veneers += 1;
    }
    linked
}

/// The code zone: reserved addresses near the extension's code, handed out in pages.
struct Zone {
    /// The first reserved address.
    start: usize,
    /// Ranges of the zone not in use, as (start, length); first fit, never merged.
    free: Vec<(usize, usize)>,
}

/// The code zone, once it is reserved (None inside: it could not be placed in reach).
static ZONE: Mutex<Option<Option<Zone>>> = Mutex::new(None);

/// Bytes the code zone reserves: a quarter of a linked call's reach (so that every block in
/// it reaches the whole extension, placed within half the reach of it), at most 64 MiB (a
/// process that compiles more places the rest wherever the kernel puts it).
fn zone_len() -> usize {
    (Isa::host().call_reach() / 4).min(64 << 20) as usize
}

/// Where the extension's code is (an address inside it).
fn anchor() -> usize {
    zone_give_back as *const () as usize
}

/// Reserves the code zone within half a call's reach of [`anchor`]: tries addresses below and
/// above it, keeping the first reservation that the kernel placed in reach.
fn reserve_zone() -> Option<Zone> {
    let len = zone_len();
    let reach = (Isa::host().call_reach() / 2) as usize;
    let a = anchor() & !(page_size() - 1);
    let hints = (1..8).flat_map(|k| [a.checked_sub(k * len / 2 + len), a.checked_add(k * len / 2)]);
    for hint in hints.flatten() {
        // SAFETY: a private anonymous mapping with no access, at a hint the kernel may ignore;
        // checked for failure below.
        let p = unsafe {
            libc::mmap(
                hint as *mut libc::c_void,
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            continue;
        }
        let start = p as usize;
        if start.abs_diff(a) <= reach && (start + len).abs_diff(a) <= reach {
            return Some(Zone {
                start,
                free: vec![(start, len)],
            });
        }
        // SAFETY: unmapping the reservation just made, which nothing refers to.
        unsafe { libc::munmap(p, len) };
    }
    None
}

/// The code zone's addresses (start, end), reserving it on first use; None when it could not
/// be placed within reach of the extension.
pub fn code_zone() -> Option<(u64, u64)> {
    let mut zone = ZONE.lock().unwrap_or_else(|e| e.into_inner());
    zone.get_or_insert_with(reserve_zone)
        .as_ref()
        .map(|z| (z.start as u64, (z.start + zone_len()) as u64))
}

/// Maps `len` read-write bytes for a block: in the code zone when there is room, else wherever
/// the kernel puts them. Returns the mapping and whether it is in the zone.
fn map_pages(len: usize) -> Result<(*mut u8, bool), String> {
    let mut zone = ZONE.lock().unwrap_or_else(|e| e.into_inner());
    let zone = zone.get_or_insert_with(reserve_zone);
    if let Some(z) = zone {
        if let Some(i) = z.free.iter().position(|&(_, n)| n >= len) {
            let (start, n) = z.free[i];
            // SAFETY: [start, start + len) is part of our own reservation and not in use, so
            // replacing it with a fresh read-write mapping affects nothing else.
            let p = unsafe {
                libc::mmap(
                    start as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                if n == len {
                    z.free.swap_remove(i);
                } else {
                    z.free[i] = (start + len, n - len);
                }
                return Ok((p as *mut u8, true));
            }
        }
    }
    // SAFETY: an anonymous private mapping with no address hint; checked for failure below.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!(
            "mmap of {len} bytes failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok((p as *mut u8, false))
}

/// Gives a block's pages back to the code zone: their memory is released and their addresses
/// reserved again for later blocks.
fn zone_give_back(map: *mut u8, len: usize) {
    // SAFETY: [map, map + len) is a block's mapping inside our reservation, which nothing runs
    // or refers to any more; a fixed no-access mapping releases its memory and keeps the
    // addresses reserved.
    let p = unsafe {
        libc::mmap(
            map as *mut libc::c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return;
    }
    let mut zone = ZONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(Some(z)) = zone.as_mut() {
        z.free.push((map as usize, len));
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// Makes the instruction stream see the bytes just written at `p..p + len`.
#[cfg(target_arch = "aarch64")]
pub fn flush_icache(p: *mut u8, len: usize) {
    // Cache line sizes come from CTR_EL0: DminLine in bits 16..20, IminLine in bits 0..4 (log2
    // of the number of 4-byte words). Clean data lines to the point of unification, invalidate
    // instruction lines, then synchronise.
    let ctr: u64;
    // SAFETY: reading CTR_EL0 is allowed at EL0 on Linux.
    unsafe { std::arch::asm!("mrs {0}, ctr_el0", out(reg) ctr) };
    let dline = 4usize << ((ctr >> 16) & 0xf);
    let iline = 4usize << (ctr & 0xf);
    let start = p as usize;
    let end = start + len;
    let mut a = start & !(dline - 1);
    while a < end {
        // SAFETY: `a` lies within (the cache line of) our own mapping.
        unsafe { std::arch::asm!("dc cvau, {0}", in(reg) a) };
        a += dline;
    }
    // SAFETY: barrier instructions have no memory operands.
    unsafe { std::arch::asm!("dsb ish") };
    let mut a = start & !(iline - 1);
    while a < end {
        // SAFETY: as above.
        unsafe { std::arch::asm!("ic ivau, {0}", in(reg) a) };
        a += iline;
    }
    // SAFETY: barrier instructions have no memory operands.
    unsafe { std::arch::asm!("dsb ish", "isb") };
}

/// x86-64 keeps instruction fetch coherent with stores.
#[cfg(not(target_arch = "aarch64"))]
pub fn flush_icache(_p: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ret` on both ISAs.
    fn ret() -> &'static [u8] {
        if cfg!(target_arch = "aarch64") {
            &[0xc0, 0x03, 0x5f, 0xd6]
        } else {
            &[0xc3]
        }
    }

    #[test]
    fn spread_blocks_start_on_different_cache_line_colours() {
        let page = page_size();
        let blocks: Vec<CodeBlock> = (0..8)
            .map(|_| CodeBlock::new(ret(), true).unwrap())
            .collect();
        let mut colours: Vec<usize> = blocks
            .iter()
            .map(|b| b.addr() % page / COLOUR_STEP)
            .collect();
        assert!(blocks.iter().all(|b| b.addr() % COLOUR_STEP == 0));
        colours.sort();
        colours.dedup();
        assert_eq!(colours.len(), 8, "eight consecutive blocks, eight colours");
        for b in &blocks {
            // SAFETY: the block holds a lone `ret`, callable with the C ABI.
            let f: extern "C" fn() = unsafe { std::mem::transmute(b.addr()) };
            f();
            assert_eq!(b.bytes(), ret());
        }
    }

    #[test]
    fn blocks_come_from_the_code_zone_near_the_extension_and_go_back_to_it() {
        let (start, end) = code_zone().expect("a zone in reach of the extension");
        let reach = Isa::host().call_reach();
        assert!(Isa::host().reaches_from((start, end), anchor() as u64));
        assert!(end - start <= reach / 4);
        let b = CodeBlock::new(ret(), false).unwrap();
        assert!(b.zoned && (start..end).contains(&(b.addr() as u64)));
        let (map, len) = (b.map as usize, b.map_len);
        drop(b);
        let zone = ZONE.lock().unwrap();
        let free = &zone.as_ref().unwrap().as_ref().unwrap().free;
        assert!(free.contains(&(map, len)), "its pages are free again");
    }

    #[test]
    fn unspread_blocks_start_at_a_page_boundary() {
        let page = page_size();
        for _ in 0..4 {
            let b = CodeBlock::new(ret(), false).unwrap();
            assert_eq!(b.addr() % page, 0);
        }
    }
}
