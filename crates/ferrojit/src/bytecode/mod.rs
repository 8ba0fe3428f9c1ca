//! Decoding CPython 3.11 bytecode: instructions with their full argument (EXTENDED_ARG folded
//! in), their inline caches, and the specialised form the interpreter quickened them to, which is
//! ferrojit's type feedback.

use crate::cpython::opcodes::*;
use std::fmt;

/// One decoded instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instr {
    /// Index (in 16-bit code units) of the first unit of the instruction, EXTENDED_ARG prefixes
    /// included: where the interpreter must resume to execute it again.
    pub start: u32,
    /// Index of the opcode unit itself (after any EXTENDED_ARG): what `prev_instr` points at
    /// when this instruction raises.
    pub at: u32,
    /// The generic opcode (the specialised form mapped back through `_PyOpcode_Deopt`).
    pub op: u8,
    /// The opcode as found in the (possibly quickened) code: the feedback.
    pub specialised: u8,
    /// The full argument.
    pub arg: u32,
    /// The inline cache units that follow the instruction.
    pub cache: Vec<u16>,
}

impl Instr {
    /// Index of the next instruction (after the caches).
    pub fn next(&self) -> u32 {
        self.at + 1 + self.cache.len() as u32
    }

    /// Target of a relative jump, in code units.
    pub fn jump_target(&self) -> Option<u32> {
        match self.op {
            JUMP_FORWARD
            | POP_JUMP_FORWARD_IF_FALSE
            | POP_JUMP_FORWARD_IF_TRUE
            | POP_JUMP_FORWARD_IF_NONE
            | POP_JUMP_FORWARD_IF_NOT_NONE
            | JUMP_IF_FALSE_OR_POP
            | JUMP_IF_TRUE_OR_POP
            | FOR_ITER
            | SEND => Some(self.next() + self.arg),
            JUMP_BACKWARD
            | JUMP_BACKWARD_NO_INTERRUPT
            | POP_JUMP_BACKWARD_IF_FALSE
            | POP_JUMP_BACKWARD_IF_TRUE
            | POP_JUMP_BACKWARD_IF_NONE
            | POP_JUMP_BACKWARD_IF_NOT_NONE => Some(self.next() - self.arg),
            _ => None,
        }
    }

    /// Reads a little-endian 32-bit value from cache units `i` and `i + 1`.
    pub fn cache_u32(&self, i: usize) -> u32 {
        self.cache[i] as u32 | (self.cache[i + 1] as u32) << 16
    }

    /// Reads a 64-bit value from cache units `i..i + 4`.
    pub fn cache_u64(&self, i: usize) -> u64 {
        (0..4)
            .map(|k| (self.cache[i + k] as u64) << (16 * k))
            .fold(0, |a, b| a | b)
    }

    /// The name of the generic opcode.
    pub fn name(&self) -> &'static str {
        OPCODE_NAMES[self.op as usize]
    }

    /// The name of the specialised opcode the interpreter chose (same as `name()` if none).
    pub fn specialised_name(&self) -> &'static str {
        OPCODE_NAMES[self.specialised as usize]
    }

    /// Whether this is an adaptive instruction the interpreter has not executed since it
    /// quickened the code: `_PyCode_Quicken` leaves the adaptive form with a zero counter, and
    /// the first execution either specialises it or backs the counter off.
    pub fn is_untouched_adaptive(&self) -> bool {
        self.specialised_name().ends_with("_ADAPTIVE") && self.cache.first() == Some(&0)
    }
}

/// Whether `op` is a loop's back edge: a backward jump after which the interpreter checks its
/// eval breaker (every one but `JUMP_BACKWARD_NO_INTERRUPT`, which only `yield from`/`await` use).
pub fn is_loop_edge(op: u8) -> bool {
    matches!(
        op,
        JUMP_BACKWARD
            | POP_JUMP_BACKWARD_IF_FALSE
            | POP_JUMP_BACKWARD_IF_TRUE
            | POP_JUMP_BACKWARD_IF_NONE
            | POP_JUMP_BACKWARD_IF_NOT_NONE
    )
}

/// Whether an exception handler of 3.11's exception table `table` (`co_exceptiontable`) covers
/// code unit `at`. The table is a list of entries (start, length, target, depth and lasti), each
/// a big-endian varint of 6-bit groups with bit 6 set on all but the last byte (bit 7 marks an
/// entry's first byte); an entry covers `start..start + length`. A table that cannot be read
/// covers everything.
pub fn handler_covers(table: &[u8], at: u32) -> bool {
    let mut bytes = table.iter().copied();
    let mut varint = || -> Option<u32> {
        let mut b = bytes.next()?;
        let mut value = u32::from(b & 63);
        while b & 64 != 0 {
            b = bytes.next()?;
            value = (value << 6) | u32::from(b & 63);
        }
        Some(value)
    };
    loop {
        let Some(start) = varint() else {
            return false;
        };
        let (Some(length), Some(_target), Some(_depth_lasti)) = (varint(), varint(), varint())
        else {
            return true;
        };
        if start <= at && at < start + length {
            return true;
        }
    }
}

/// Whether one of the loops of quickened code has gone round since the code was quickened: the
/// last instruction with an inline cache before some back edge has left its untouched adaptive
/// state. A loop without such an instruction counts as gone round (nothing to tell it by).
/// A recursive function quickened on its first call can reach its second call before its loop
/// turns: its feedback then covers only the code before the recursive call.
pub fn a_loop_went_round(instrs: &[Instr]) -> bool {
    instrs.iter().enumerate().any(|(k, back)| {
        let Some(head) = back.jump_target().filter(|&t| t <= back.at) else {
            return false;
        };
        // The instructions are in code order: walk back from the back edge to the head.
        instrs[..k]
            .iter()
            .rev()
            .take_while(|i| i.start >= head)
            .find(|i| !i.cache.is_empty())
            .is_none_or(|last| !last.is_untouched_adaptive())
    })
}

impl fmt::Display for Instr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>4} {} {}", self.at, self.name(), self.arg)?;
        if self.specialised != self.op {
            write!(f, " [{}]", self.specialised_name())?;
        }
        Ok(())
    }
}

/// Decodes `units` (the code's `co_code_adaptive`) with the interpreter's opcode tables.
/// `caches[op]` is the number of inline cache units of `op`; `deopt[op]` its generic form.
pub fn decode(units: &[u16], caches: &[u8; 256], deopt: &[u8; 256]) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < units.len() {
        let start = i;
        let mut arg: u32 = 0;
        let (mut op, mut raw) = split(units[i], deopt);
        while op == EXTENDED_ARG {
            arg = (arg | raw as u32) << 8;
            i += 1;
            (op, raw) = split(units[i], deopt);
        }
        arg |= raw as u32;
        let specialised = (units[i] & 0xff) as u8;
        let ncache = caches[op as usize] as usize;
        let cache = units[i + 1..(i + 1 + ncache).min(units.len())].to_vec();
        out.push(Instr {
            start: start as u32,
            at: i as u32,
            op,
            specialised,
            arg,
            cache,
        });
        i += 1 + ncache;
    }
    out
}

/// The generic opcode and the raw argument byte of one code unit.
fn split(unit: u16, deopt: &[u8; 256]) -> (u8, u8) {
    let specialised = (unit & 0xff) as u8;
    let op = match deopt[specialised as usize] {
        0 => specialised,
        generic => generic,
    };
    (op, (unit >> 8) as u8)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_exception_table_says_which_units_a_handler_covers() {
        // Entries (start 4, length 6, target 20, depth 1) and (start 100, length 2, target 130,
        // depth 0): 100 and 130 take two 6-bit groups.
        let table = [0x80 | 4, 6, 20, 1, 0x80 | 0x40 | 1, 36, 2, 0x40 | 2, 2, 0];
        let covered: Vec<u32> = (0..140).filter(|&at| handler_covers(&table, at)).collect();
        assert_eq!(covered, vec![4, 5, 6, 7, 8, 9, 100, 101]);
        assert!(!handler_covers(&[], 0));
        // A truncated entry covers everything.
        assert!(handler_covers(&[0x80 | 4, 6], 50));
    }

    use super::*;

    fn instr(at: u32, op: u8, specialised: u8, arg: u32, cache: Vec<u16>) -> Instr {
        Instr {
            start: at,
            at,
            op,
            specialised,
            arg,
            cache,
        }
    }

    /// `while ...: x = o.a` quickened: LOAD_FAST at 0, LOAD_ATTR at 1 (4 caches), STORE_FAST
    /// at 6, JUMP_BACKWARD at 7 back to 0.
    fn loop_with_attr(attr_form: u8, counter: u16) -> Vec<Instr> {
        vec![
            instr(0, LOAD_FAST, LOAD_FAST, 0, vec![]),
            instr(1, LOAD_ATTR, attr_form, 0, vec![counter, 0, 0, 0]),
            instr(6, STORE_FAST, STORE_FAST, 1, vec![]),
            instr(7, JUMP_BACKWARD, JUMP_BACKWARD, 8, vec![]),
        ]
    }

    #[test]
    fn a_loop_went_round_once_its_last_cached_instruction_ran() {
        assert!(!a_loop_went_round(&loop_with_attr(LOAD_ATTR_ADAPTIVE, 0)));
        assert!(a_loop_went_round(&loop_with_attr(
            LOAD_ATTR_INSTANCE_VALUE,
            53
        )));
        // Tried and failed to specialise: the counter backed off, the loop ran.
        assert!(a_loop_went_round(&loop_with_attr(LOAD_ATTR_ADAPTIVE, 17)));
    }

    #[test]
    fn code_without_a_back_edge_has_no_loop_that_went_round() {
        let straight = vec![
            instr(0, LOAD_FAST, LOAD_FAST, 0, vec![]),
            instr(1, RETURN_VALUE, RETURN_VALUE, 0, vec![]),
        ];
        assert!(!a_loop_went_round(&straight));
    }
}
