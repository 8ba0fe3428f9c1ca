//! `FERROJIT_PERF_MAP=1`: every function compiled for the host is listed in
//! `/tmp/perf-<pid>.map` (start address, size, name), the file `perf report` reads to name
//! code that has no symbol table. A profiling aid; off unless the variable is set.

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// The open map file, if profiling was asked for and the file could be made.
fn map_file() -> Option<&'static Mutex<File>> {
    static FILE: OnceLock<Option<Mutex<File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        if std::env::var_os("FERROJIT_PERF_MAP").is_none_or(|v| v.is_empty() || v == "0") {
            return None;
        }
        let path = format!("/tmp/perf-{}.map", std::process::id());
        match File::options().create(true).append(true).open(&path) {
            Ok(f) => Some(Mutex::new(f)),
            Err(e) => {
                eprintln!("ferrojit: FERROJIT_PERF_MAP: cannot open {path}: {e}");
                None
            }
        }
    })
    .as_ref()
}

/// Lists `len` bytes of code at `addr` under `name` (nothing unless FERROJIT_PERF_MAP is set).
pub fn record(addr: usize, len: usize, name: &str) {
    if let Some(file) = map_file() {
        let line = format!("{addr:x} {len:x} py::{}\n", name.replace('\n', " "));
        let _ = file.lock().map(|mut f| f.write_all(line.as_bytes()));
    }
}
