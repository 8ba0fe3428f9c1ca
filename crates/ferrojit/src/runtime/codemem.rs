//! Executable memory, W^X: each compiled function gets its own pages, written while they are
//! read-write and then switched to read-execute before anything runs them, so no page is ever
//! writable and executable at once, and no running code sits on a page being written. On AArch64
//! the instruction cache is made coherent with the data written before the code runs.

use std::ptr;

/// Machine code installed in executable memory; unmapped on drop.
pub struct CodeBlock {
    ptr: *mut u8,
    len: usize,
    map_len: usize,
}

// SAFETY: the block is immutable (read-execute) once built; only its address is shared.
unsafe impl Send for CodeBlock {}
// SAFETY: as above, nothing mutates it after construction.
unsafe impl Sync for CodeBlock {}

impl CodeBlock {
    /// Copies `code` into fresh executable pages.
    pub fn new(code: &[u8]) -> Result<CodeBlock, String> {
        let page = page_size();
        let map_len = code.len().max(1).div_ceil(page) * page;
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
        let p = p as *mut u8;
        // SAFETY: the mapping is at least code.len() bytes, writable, and not shared with anyone.
        unsafe { ptr::copy_nonoverlapping(code.as_ptr(), p, code.len()) };
        // SAFETY: p/map_len is exactly the mapping made above.
        if unsafe {
            libc::mprotect(
                p as *mut libc::c_void,
                map_len,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        } != 0
        {
            let err = std::io::Error::last_os_error();
            // SAFETY: unmapping the mapping made above, which nothing else refers to.
            unsafe { libc::munmap(p as *mut libc::c_void, map_len) };
            return Err(format!("mprotect to read-execute failed: {err}"));
        }
        flush_icache(p, code.len());
        Ok(CodeBlock {
            ptr: p,
            len: code.len(),
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
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.map_len) };
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
