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

use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Machine code installed in executable memory; unmapped on drop.
pub struct CodeBlock {
    /// The first instruction (the mapping's start plus the block's colour offset).
    ptr: *mut u8,
    len: usize,
    /// The mapping: what `munmap` is given.
    map: *mut u8,
    map_len: usize,
}

// SAFETY: the block is immutable (read-execute) once built; only its address is shared.
unsafe impl Send for CodeBlock {}
// SAFETY: as above, nothing mutates it after construction.
unsafe impl Sync for CodeBlock {}

impl CodeBlock {
    /// Copies `code` into fresh executable pages, at the next colour offset when `spread` is
    /// on (the `spread-code` optimisation), else at the start of the first page.
    pub fn new(code: &[u8], spread: bool) -> Result<CodeBlock, String> {
        let page = page_size();
        let offset = next_colour_offset(spread) % page;
        let map_len = (offset + code.len().max(1)).div_ceil(page) * page;
        // SAFETY: an anonymous private mapping with no address hint; checked for failure below.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!(
                "mmap of {map_len} bytes failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        let map = p as *mut u8;
        // SAFETY: offset + code.len() <= map_len, so the pointer stays within the mapping.
        let p = unsafe { map.add(offset) };
        // SAFETY: the mapping holds offset + code.len() bytes, writable, shared with no one.
        unsafe { ptr::copy_nonoverlapping(code.as_ptr(), p, code.len()) };
        // SAFETY: map/map_len is exactly the mapping made above.
        if unsafe {
            libc::mprotect(
                map as *mut libc::c_void,
                map_len,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        } != 0
        {
            let err = std::io::Error::last_os_error();
            // SAFETY: unmapping the mapping made above, which nothing else refers to.
            unsafe { libc::munmap(map as *mut libc::c_void, map_len) };
            return Err(format!("mprotect to read-execute failed: {err}"));
        }
        flush_icache(p, code.len());
        Ok(CodeBlock {
            ptr: p,
            len: code.len(),
            map,
            map_len,
        })
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
        // SAFETY: the mapping was made in `new` and nobody runs it any more (the owner drops it
        // only when its code object dies).
        unsafe { libc::munmap(self.map as *mut libc::c_void, self.map_len) };
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
fn flush_icache(p: *mut u8, len: usize) {
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
fn flush_icache(_p: *mut u8, _len: usize) {}

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
    fn unspread_blocks_start_at_a_page_boundary() {
        let page = page_size();
        for _ in 0..4 {
            let b = CodeBlock::new(ret(), false).unwrap();
            assert_eq!(b.addr() % page, 0);
        }
    }
}
