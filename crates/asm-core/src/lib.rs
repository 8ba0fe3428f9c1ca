//! Shared machinery for ferrojit's instruction encoders: a growable code buffer, labels, and
//! fix-ups that are patched once every label has an address.
//!
//! Each architecture's encoder owns a [`CodeBuffer`], appends encoded bytes to it, records a
//! [`Fixup`] whenever an instruction refers to a label that may not be bound yet, and supplies a
//! patch function to [`CodeBuffer::finish`] that rewrites the instruction once the label's offset
//! is known. The kind of a fix-up (which instruction form, which field) is the encoder's business:
//! this crate only carries it through as a small number.

use std::fmt;

/// Gives the address of a fresh 64-bit counter (zero, writable, living as long as the code
/// that counts into it), or None when there are no more.
pub type NextCounter = fn() -> Option<usize>;

/// Where code that counts its own execution adds one to `counter`: the straight-line code
/// from `start` to the next count point (or to the first unconditional jump or return before
/// it) runs once each time the counter goes up. Code reaches each such stretch only at its
/// start: count points sit at the entry, at every label and after every conditional branch,
/// and their own instructions are not part of any stretch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountPoint {
    pub counter: usize,
    /// Where the counting sequence begins (the stretch before ends here).
    pub begin: usize,
    /// Where the counted stretch begins, after the counting sequence.
    pub start: usize,
}

/// An assembler's count points, for code that counts its own execution (each ISA's
/// `count_point` writes the counting sequence between [`Counting::counter`] and
/// [`Counting::record`]).
#[derive(Default)]
pub struct Counting {
    next: Option<NextCounter>,
    points: Vec<CountPoint>,
}

impl Counting {
    /// Where counters come from; None: the code does not count itself.
    pub fn set(&mut self, next: Option<NextCounter>) {
        self.next = next;
    }

    /// A fresh counter for a count point, or None when the code does not count (or no counter
    /// is left).
    pub fn counter(&self) -> Option<usize> {
        self.next.and_then(|next| next())
    }

    /// A count point whose sequence for `counter` spans `begin..start`.
    pub fn record(&mut self, counter: usize, begin: usize, start: usize) {
        self.points.push(CountPoint {
            counter,
            begin,
            start,
        });
    }

    /// The count points so far, in code order.
    pub fn points(&self) -> &[CountPoint] {
        &self.points
    }
}

/// A call of an address outside the code, emitted as one PC-relative instruction (`call
/// rel32`, `bl`) whose displacement is written only once the code's own address is known
/// (each ISA's `link_call`); until then it is zero. A target beyond the instruction's reach is
/// called through a [`Veneer`] placed next to the code instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLink {
    /// Byte offset of the call instruction.
    pub at: usize,
    /// The absolute address it calls.
    pub target: u64,
}

/// A few instructions that jump to an absolute address from anywhere (each ISA's `veneer`):
/// what a linked call goes through when its target is out of its reach. Position-independent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veneer {
    /// The instructions, then the target address as data.
    pub bytes: Vec<u8>,
    /// When the veneer counts its own execution: its counter and the instructions it stands
    /// for (the jump itself; the counting sequence excluded), as in [`CountPoint`].
    pub counted: Option<(usize, u32)>,
}

/// A position in the code that branches can target; bound at most once with
/// [`CodeBuffer::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(pub u32);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.0)
    }
}

/// An instruction at `at` whose field of kind `kind` must be patched to reach `label`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixup {
    /// Byte offset of the start of the instruction to patch.
    pub at: usize,
    /// The label the instruction refers to.
    pub label: Label,
    /// Encoder-defined identifier of the instruction form to patch.
    pub kind: u8,
}

/// Why encoding could not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsmError {
    /// A fix-up refers to a label that was never bound.
    UnboundLabel(Label),
    /// A label was bound twice.
    LabelBoundTwice(Label),
    /// A branch target is too far away for the instruction form used.
    OutOfRange {
        at: usize,
        label: Label,
        distance: i64,
    },
    /// An operand cannot be encoded by the requested instruction form.
    Unencodable(String),
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsmError::UnboundLabel(l) => write!(f, "label {l} is used but never bound"),
            AsmError::LabelBoundTwice(l) => write!(f, "label {l} is bound twice"),
            AsmError::OutOfRange {
                at,
                label,
                distance,
            } => {
                write!(
                    f,
                    "branch at {at:#x} to {label} is out of range ({distance} bytes)"
                )
            }
            AsmError::Unencodable(what) => write!(f, "cannot encode {what}"),
        }
    }
}

impl std::error::Error for AsmError {}

/// Bytes being assembled, with the labels and fix-ups that refer into them.
#[derive(Default, Debug, Clone)]
pub struct CodeBuffer {
    bytes: Vec<u8>,
    labels: Vec<Option<usize>>,
    fixups: Vec<Fixup>,
    /// 64-bit constants that instructions load PC-relative, each once, with the label it will
    /// be bound to when [`CodeBuffer::place_literals`] lays them out after the code.
    literals: Vec<(u64, Label)>,
}

impl CodeBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of bytes emitted so far, which is the offset of the next instruction.
    pub fn offset(&self) -> usize {
        self.bytes.len()
    }

    /// The bytes emitted so far (fix-ups not yet applied).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn put_u8(&mut self, b: u8) {
        self.bytes.push(b);
    }

    pub fn put_bytes(&mut self, bs: &[u8]) {
        self.bytes.extend_from_slice(bs);
    }

    pub fn put_u32_le(&mut self, w: u32) {
        self.bytes.extend_from_slice(&w.to_le_bytes());
    }

    /// Drops the bytes from `at` on (the last instructions, no fix-up or label on them).
    pub fn truncate(&mut self, at: usize) {
        self.bytes.truncate(at);
    }

    pub fn put_u64_le(&mut self, w: u64) {
        self.bytes.extend_from_slice(&w.to_le_bytes());
    }

    /// A fresh, unbound label.
    pub fn new_label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() as u32 - 1)
    }

    /// Binds `label` to the current offset.
    pub fn bind(&mut self, label: Label) -> Result<(), AsmError> {
        let slot = &mut self.labels[label.0 as usize];
        if slot.is_some() {
            return Err(AsmError::LabelBoundTwice(label));
        }
        *slot = Some(self.bytes.len());
        Ok(())
    }

    /// The offset `label` is bound to, if it is bound yet.
    pub fn label_offset(&self, label: Label) -> Option<usize> {
        self.labels[label.0 as usize]
    }

    /// The label of the pool entry holding `value` (one entry per distinct value); the
    /// instruction that loads it records a fix-up to it like a branch to a label.
    pub fn literal(&mut self, value: u64) -> Label {
        if let Some(&(_, l)) = self.literals.iter().find(|(v, _)| *v == value) {
            return l;
        }
        let l = self.new_label();
        self.literals.push((value, l));
        l
    }

    /// Lays the literal pool out here: padding with `pad` to an 8-byte boundary, then each
    /// constant (little-endian) at its label. Returns where the pool starts, which is where
    /// the instructions end (the offset before the padding); with no literals, nothing is
    /// written. Call once, after the last instruction.
    pub fn place_literals(&mut self, pad: u8) -> usize {
        let code_end = self.bytes.len();
        if self.literals.is_empty() {
            return code_end;
        }
        while self.bytes.len() % 8 != 0 {
            self.bytes.push(pad);
        }
        for (value, l) in std::mem::take(&mut self.literals) {
            self.labels[l.0 as usize] = Some(self.bytes.len());
            self.put_u64_le(value);
        }
        code_end
    }

    /// Records that the instruction starting at `at` must be patched to reach `label`.
    pub fn add_fixup(&mut self, at: usize, label: Label, kind: u8) {
        self.fixups.push(Fixup { at, label, kind });
    }

    /// Applies every fix-up with `patch(bytes, fixup, target_offset)` and returns the code.
    pub fn finish(
        mut self,
        mut patch: impl FnMut(&mut [u8], Fixup, usize) -> Result<(), AsmError>,
    ) -> Result<Vec<u8>, AsmError> {
        for fixup in std::mem::take(&mut self.fixups) {
            let target =
                self.labels[fixup.label.0 as usize].ok_or(AsmError::UnboundLabel(fixup.label))?;
            patch(&mut self.bytes, fixup, target)?;
        }
        Ok(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbound_label_is_an_error() {
        let mut buf = CodeBuffer::new();
        let l = buf.new_label();
        buf.put_u32_le(0);
        buf.add_fixup(0, l, 0);
        assert_eq!(buf.finish(|_, _, _| Ok(())), Err(AsmError::UnboundLabel(l)));
    }

    #[test]
    fn literals_are_pooled_once_each_after_the_code_and_aligned() {
        let mut buf = CodeBuffer::new();
        let a = buf.literal(0x1122_3344_5566_7788);
        let b = buf.literal(7);
        assert_eq!(buf.literal(0x1122_3344_5566_7788), a);
        buf.put_u8(0xc3);
        buf.add_fixup(0, b, 0);
        assert_eq!(buf.place_literals(0xcc), 1);
        let out = buf
            .finish(|bytes, f, target| {
                assert_eq!(target, 16);
                bytes[f.at] = target as u8;
                Ok(())
            })
            .unwrap();
        assert_eq!(out.len(), 24);
        assert_eq!(&out[1..8], &[0xcc; 7]);
        assert_eq!(out[8..16], 0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(out[16..24], 7u64.to_le_bytes());
        let mut empty = CodeBuffer::new();
        empty.put_u8(0x90);
        assert_eq!(empty.place_literals(0), 1);
        assert_eq!(empty.finish(|_, _, _| Ok(())).unwrap(), vec![0x90]);
    }

    #[test]
    fn fixups_see_bound_offsets() {
        let mut buf = CodeBuffer::new();
        let l = buf.new_label();
        buf.add_fixup(0, l, 7);
        buf.put_u32_le(0);
        buf.put_u32_le(0);
        buf.bind(l).unwrap();
        assert_eq!(buf.bind(l), Err(AsmError::LabelBoundTwice(l)));
        let out = buf
            .finish(|bytes, f, target| {
                assert_eq!((f.at, f.kind, target), (0, 7, 8));
                bytes[f.at] = target as u8;
                Ok(())
            })
            .unwrap();
        assert_eq!(out[0], 8);
    }
}
