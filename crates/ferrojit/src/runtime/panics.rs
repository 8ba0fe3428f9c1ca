//! A panic inside the compiler (a bug: a failed assertion, an index out of range) must not
//! cross into CPython, where unwinding out of an `extern "C"` function aborts the process: the
//! function is refused with the panic's message as the reason, and the program runs on in the
//! interpreter. The message goes to the statistics, not to the program's standard error.
//!
//! `FERROJIT_PANIC_IN_COMPILER=QUALNAME` makes the compiler panic on the function of that
//! qualified name (fault injection, for the tests of exactly this).

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, OnceLock};

thread_local! {
    /// Inside [`contained`]: the panic hook keeps the message instead of printing it.
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
    /// The message of the last contained panic, with where it happened.
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Puts a hook in front of the current panic hook, once: within [`contained`] it records the
/// message; elsewhere it hands the panic to the hook that was there before.
fn install_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CONTAINING.with(Cell::get) {
                let text = match info.location() {
                    Some(at) => format!(
                        "{} at {}:{}",
                        payload_text(info.payload()),
                        at.file(),
                        at.line()
                    ),
                    None => payload_text(info.payload()),
                };
                MESSAGE.with(|m| *m.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// A panic payload's text (`panic!` with a literal or a formatted message).
fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Runs `f`; a panic in it becomes `Err` with its message (and where it happened), printed
/// nowhere.
pub fn contained<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was = CONTAINING.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(was));
    result.map_err(|payload| {
        MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| payload_text(payload.as_ref()))
    })
}

/// Panics when `FERROJIT_PANIC_IN_COMPILER` names `qualname` (see the module's header).
pub fn inject_fault(qualname: &str) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var("FERROJIT_PANIC_IN_COMPILER").ok());
    if target.as_deref() == Some(qualname) {
        panic!("fault injected by FERROJIT_PANIC_IN_COMPILER={qualname}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message_and_place() {
        let err = contained(|| -> u32 { panic!("broken {}", 42) }).unwrap_err();
        assert!(err.starts_with("broken 42 at "), "{err}");
        assert!(err.contains("panics.rs"), "{err}");
        assert_eq!(contained(|| 7), Ok(7));
        let nested = contained(|| contained(|| -> u8 { panic!("inner") }).unwrap_err());
        assert!(nested.unwrap().starts_with("inner at "));
    }
}
