//! Ordering a parallel move (every destination receives the old value of its source) into a
//! sequence of single moves, breaking cycles through a scratch register. Used for call
//! arguments on both ISAs.

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    Reg(u8),
    /// A spill slot.
    Slot(u32),
    Imm(i64),
}

/// One step of the ordered sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    pub dst: u8,
    pub src: Src,
}

/// Orders `moves` (distinct destination registers) so that no source register is overwritten
/// before it is read; `scratch` must not appear in `moves`.
pub fn sequence(moves: &[Move], scratch: u8) -> Vec<Move> {
    let mut pending: Vec<Move> = moves
        .iter()
        .copied()
        .filter(|m| m.src != Src::Reg(m.dst))
        .collect();
    let mut out = Vec::new();
    while !pending.is_empty() {
        let blocked = |m: &Move, pending: &[Move]| pending.iter().any(|o| o.src == Src::Reg(m.dst));
        if let Some(i) = (0..pending.len()).find(|i| !blocked(&pending[*i], &pending)) {
            out.push(pending.remove(i));
            continue;
        }
        // Every remaining move is blocked: they form cycles. Save one source in the scratch
        // register and redirect its readers there.
        let victim = pending[0].dst;
        out.push(Move {
            dst: scratch,
            src: Src::Reg(victim),
        });
        for m in pending.iter_mut() {
            if m.src == Src::Reg(victim) {
                m.src = Src::Reg(scratch);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs the sequence on a register file and returns it.
    fn run(seq: &[Move], regs: &mut [i64; 16]) {
        for m in seq {
            regs[m.dst as usize] = match m.src {
                Src::Reg(r) => regs[r as usize],
                Src::Slot(s) => 1000 + s as i64,
                Src::Imm(i) => i,
            };
        }
    }

    #[test]
    fn swap_uses_the_scratch_register() {
        let moves = [
            Move {
                dst: 0,
                src: Src::Reg(1),
            },
            Move {
                dst: 1,
                src: Src::Reg(0),
            },
        ];
        let seq = sequence(&moves, 15);
        let mut regs = [0i64; 16];
        regs[0] = 10;
        regs[1] = 11;
        run(&seq, &mut regs);
        assert_eq!((regs[0], regs[1]), (11, 10));
        assert_eq!(seq.len(), 3);
    }

    proptest! {
        #[test]
        fn any_parallel_move_is_done_right(srcs in proptest::collection::vec(0u8..8, 1..7)) {
            // Destination i receives register srcs[i].
            let moves: Vec<Move> = srcs.iter().enumerate().map(|(d, s)| Move { dst: d as u8, src: Src::Reg(*s) }).collect();
            let mut regs = [0i64; 16];
            for (i, r) in regs.iter_mut().enumerate() { *r = 100 + i as i64; }
            let before = regs;
            run(&sequence(&moves, 15), &mut regs);
            for (d, s) in srcs.iter().enumerate() {
                prop_assert_eq!(regs[d], before[*s as usize]);
            }
        }
    }
}
