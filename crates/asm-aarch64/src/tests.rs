//! Every instruction form checked against capstone: each test assembles instructions over many
//! registers, offsets and immediates, disassembles them with capstone and compares the text with
//! what was asked for (built from the inputs, in capstone's spelling: aliases such as mov, cmp,
//! lsl, cset; immediates in decimal below 10 and in hex above).

use super::*;
use capstone::prelude::*;

fn capstone() -> Capstone {
    Capstone::new()
        .arm64()
        .mode(arch::arm64::ArchMode::Arm)
        .build()
        .unwrap()
}

/// The text of each instruction in `code`, at address 0x1000.
fn disasm(code: &[u8]) -> Vec<String> {
    let cs = capstone();
    let insns = cs.disasm_all(code, 0x1000).unwrap();
    assert_eq!(
        insns.len() * 4,
        code.len(),
        "capstone did not decode every word: {code:02x?}"
    );
    insns
        .iter()
        .map(|i| {
            format!("{} {}", i.mnemonic().unwrap(), i.op_str().unwrap_or(""))
                .trim_end()
                .to_string()
        })
        .collect()
}

#[track_caller]
fn one(build: impl FnOnce(&mut Assembler)) -> String {
    let mut a = Assembler::new();
    build(&mut a);
    let code = a.finish().unwrap();
    assert_eq!(code.len(), 4, "expected exactly one instruction");
    disasm(&code).remove(0)
}

/// Capstone's spelling of an immediate.
fn imm(v: i64) -> String {
    match v {
        v if (0..10).contains(&v) => format!("#{v}"),
        v if v >= 10 => format!("#{v:#x}"),
        v if v > -10 => format!("#{v}"),
        v => format!("#-{:#x}", v.unsigned_abs()),
    }
}

fn regs() -> impl Iterator<Item = Reg> {
    (0..=30).map(Reg::x)
}

/// Capstone calls x29 and x30 by those names.
fn name(r: Reg) -> String {
    r.to_string()
}

fn w(r: Reg) -> String {
    match r.index() {
        31 => "wsp".into(),
        32 => "wzr".into(),
        n => format!("w{n}"),
    }
}

fn mem(base: Reg, off: i32) -> String {
    if off == 0 {
        format!("[{}]", name(base))
    } else {
        format!("[{}, {}]", name(base), imm(off as i64))
    }
}

#[test]
fn register_moves() {
    for d in regs().chain([Reg::SP]) {
        for s in regs().chain([Reg::SP]) {
            if d == Reg::SP && s == Reg::SP {
                continue;
            }
            assert_eq!(
                one(|a| a.mov_rr(d, s)),
                format!("mov {}, {}", name(d), name(s))
            );
        }
    }
}

/// Runs a MOVZ/MOVN/MOVK/ORR sequence as capstone decoded it, to check the value built.
fn simulate(lines: &[String]) -> u64 {
    let mut v = 0u64;
    for line in lines {
        let parts: Vec<&str> = line.split([' ', ',']).filter(|s| !s.is_empty()).collect();
        let num = |s: &str| {
            let s = s.trim_start_matches('#');
            let (neg, s) = match s.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, s),
            };
            let n = match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).unwrap(),
                None => s.parse::<u64>().unwrap(),
            };
            if neg {
                n.wrapping_neg()
            } else {
                n
            }
        };
        match parts[0] {
            // capstone shows MOVZ/MOVN/ORR-immediate as `mov xN, #value` with the final value.
            "mov" => v = num(parts[2]),
            "movz" | "movn" => {
                let shift = if parts.len() > 4 { num(parts[4]) } else { 0 };
                let x = num(parts[2]) << shift;
                v = if parts[0] == "movn" { !x } else { x };
            }
            "movk" => {
                let shift = if parts.len() > 4 { num(parts[4]) } else { 0 };
                v = (v & !(0xffffu64 << shift)) | (num(parts[2]) << shift);
            }
            other => panic!("unexpected {other} in {lines:?}"),
        }
    }
    v
}

#[test]
fn immediate_moves_build_the_value_in_few_instructions() {
    let values = [
        0u64,
        1,
        0xffff,
        0x10000,
        0x1234_5678,
        u64::MAX,
        u64::MAX - 1,
        0xffff_ffff_0000_ffff,
        0x5555_5555_5555_5555,
        0x0000_7f12_3456_789a,
        0x8000_0000_0000_0000,
        0x1_0000_0001,
        0xdead_beef_cafe_f00d,
    ];
    for v in values {
        for r in [Reg::X0, Reg::X15, Reg::X30] {
            let mut a = Assembler::new();
            a.mov_imm(r, v);
            let code = a.finish().unwrap();
            let lines = disasm(&code);
            assert_eq!(simulate(&lines), v, "{v:#x}: {lines:?}");
            let halves = (0..4).map(|i| (v >> (16 * i)) & 0xffff);
            let best = halves
                .clone()
                .filter(|h| *h != 0)
                .count()
                .min(halves.filter(|h| *h != 0xffff).count())
                .max(1);
            assert!(
                lines.len() <= best,
                "{v:#x} took {} instructions: {lines:?}",
                lines.len()
            );
            assert!(
                lines.iter().all(|l| l.contains(&format!("{}, ", name(r)))),
                "{lines:?}"
            );
        }
    }
}

#[test]
fn loads_and_stores() {
    let offsets = [0, 8, 16, 32760, -8, -256, 255, 3, 4, 12];
    for t in regs() {
        for b in [Reg::X0, Reg::X19, Reg::X30, Reg::SP] {
            for off in offsets {
                let x = (name(t), w(t), mem(b, off));
                let fits8 = Assembler::mem_offset_fits(8, off);
                if fits8 {
                    let mnem = if off >= 0 && off % 8 == 0 {
                        "ldr"
                    } else {
                        "ldur"
                    };
                    assert_eq!(
                        one(|a| a.ldr(t, b, off)),
                        format!("{mnem} {}, {}", x.0, x.2)
                    );
                    let mnem = if off >= 0 && off % 8 == 0 {
                        "str"
                    } else {
                        "stur"
                    };
                    assert_eq!(
                        one(|a| a.str(t, b, off)),
                        format!("{mnem} {}, {}", x.0, x.2)
                    );
                }
                if Assembler::mem_offset_fits(4, off) {
                    let scaled = off >= 0 && off % 4 == 0 && off / 4 < 4096;
                    assert_eq!(
                        one(|a| a.ldr_w(t, b, off)),
                        format!("{} {}, {}", if scaled { "ldr" } else { "ldur" }, x.1, x.2)
                    );
                    assert_eq!(
                        one(|a| a.str_w(t, b, off)),
                        format!("{} {}, {}", if scaled { "str" } else { "stur" }, x.1, x.2)
                    );
                }
                let scaled = off >= 0 && off < 4096;
                if Assembler::mem_offset_fits(1, off) {
                    assert_eq!(
                        one(|a| a.ldrb(t, b, off)),
                        format!("{} {}, {}", if scaled { "ldrb" } else { "ldurb" }, x.1, x.2)
                    );
                    assert_eq!(
                        one(|a| a.strb(t, b, off)),
                        format!("{} {}, {}", if scaled { "strb" } else { "sturb" }, x.1, x.2)
                    );
                }
            }
        }
    }
    assert!(!Assembler::mem_offset_fits(8, 32768));
    assert!(!Assembler::mem_offset_fits(8, -257));
    assert!(Assembler::mem_offset_fits(8, 32760));
}

#[test]
fn pairs() {
    for (t1, t2) in [
        (Reg::FP, Reg::LR),
        (Reg::X19, Reg::X20),
        (Reg::X0, Reg::X1),
        (Reg::X27, Reg::X28),
    ] {
        for b in [Reg::SP, Reg::X3] {
            for off in [-16, 16, -512, 504, 0, 8] {
                let (n1, n2, nb) = (name(t1), name(t2), name(b));
                assert_eq!(
                    one(|a| a.stp_pre(t1, t2, b, off)),
                    format!("stp {n1}, {n2}, [{nb}, {}]!", imm(off as i64))
                );
                assert_eq!(
                    one(|a| a.ldp_post(t1, t2, b, off)),
                    format!("ldp {n1}, {n2}, [{nb}], {}", imm(off as i64))
                );
                assert_eq!(
                    one(|a| a.stp(t1, t2, b, off)),
                    format!("stp {n1}, {n2}, {}", mem(b, off))
                );
                assert_eq!(
                    one(|a| a.ldp(t1, t2, b, off)),
                    format!("ldp {n1}, {n2}, {}", mem(b, off))
                );
            }
        }
    }
}

#[test]
fn scalar_doubles_through_fp_registers() {
    for r in [Reg::X0, Reg::X1, Reg::X15, Reg::X16, Reg::X29, Reg::X30] {
        for f in [0u8, 1, 31] {
            assert_eq!(one(|a| a.fmov_dx(f, r)), format!("fmov d{f}, {}", name(r)));
            assert_eq!(one(|a| a.fmov_xd(r, f)), format!("fmov {}, d{f}", name(r)));
        }
    }
    for (op, mnemonic) in [
        (FpOp::Add, "fadd"),
        (FpOp::Sub, "fsub"),
        (FpOp::Mul, "fmul"),
    ] {
        for (d, n, m) in [(0u8, 0u8, 1u8), (1, 2, 3), (31, 30, 29)] {
            assert_eq!(
                one(|a| a.fp_d(op, d, n, m)),
                format!("{mnemonic} d{d}, d{n}, d{m}")
            );
        }
    }
    for (n, m) in [(0u8, 1u8), (1, 0), (31, 30)] {
        assert_eq!(one(|a| a.fcmp_d(n, m)), format!("fcmp d{n}, d{m}"));
    }
}

#[test]
fn three_register_arithmetic() {
    let some = [Reg::X0, Reg::X1, Reg::X15, Reg::X16, Reg::X29, Reg::X30];
    for d in some {
        for n in some {
            for m in some {
                let (d_, n_, m_) = (name(d), name(n), name(m));
                assert_eq!(one(|a| a.add_rrr(d, n, m)), format!("add {d_}, {n_}, {m_}"));
                assert_eq!(one(|a| a.sub_rrr(d, n, m)), format!("sub {d_}, {n_}, {m_}"));
                assert_eq!(
                    one(|a| a.adds_rrr(d, n, m)),
                    format!("adds {d_}, {n_}, {m_}")
                );
                assert_eq!(
                    one(|a| a.subs_rrr(d, n, m)),
                    format!("subs {d_}, {n_}, {m_}")
                );
                assert_eq!(one(|a| a.and_rrr(d, n, m)), format!("and {d_}, {n_}, {m_}"));
                assert_eq!(one(|a| a.orr_rrr(d, n, m)), format!("orr {d_}, {n_}, {m_}"));
                assert_eq!(one(|a| a.eor_rrr(d, n, m)), format!("eor {d_}, {n_}, {m_}"));
                assert_eq!(one(|a| a.mul(d, n, m)), format!("mul {d_}, {n_}, {m_}"));
                assert_eq!(one(|a| a.smulh(d, n, m)), format!("smulh {d_}, {n_}, {m_}"));
            }
            assert_eq!(
                one(|a| a.cmp_rr(d, n)),
                format!("cmp {}, {}", name(d), name(n))
            );
            assert_eq!(one(|a| a.cmp_w_rr(d, n)), format!("cmp {}, {}", w(d), w(n)));
            assert_eq!(
                one(|a| a.tst_rr(d, n)),
                format!("tst {}, {}", name(d), name(n))
            );
            assert_eq!(
                one(|a| a.neg(d, n)),
                format!("neg {}, {}", name(d), name(n))
            );
        }
    }
    assert_eq!(one(|a| a.cmp_rr(Reg::X3, Reg::XZR)), "cmp x3, xzr");
}

#[test]
fn immediate_arithmetic() {
    let imms = [0u64, 1, 9, 10, 4095, 4096, 0x7ff000, 0xfff000];
    for d in [Reg::X0, Reg::X7, Reg::X30, Reg::SP] {
        for n in [Reg::X2, Reg::X30, Reg::SP] {
            for i in imms {
                let (d_, n_) = (name(d), name(n));
                let text = |op: &str| {
                    if i >= 4096 {
                        format!("{op} {d_}, {n_}, {}, lsl #12", imm((i >> 12) as i64))
                    } else {
                        format!("{op} {d_}, {n_}, {}", imm(i as i64))
                    }
                };
                let add = one(|a| a.add_ri(d, n, i));
                if i == 0 && (d == Reg::SP || n == Reg::SP) {
                    assert_eq!(add, format!("mov {d_}, {n_}"));
                } else {
                    assert_eq!(add, text("add"));
                }
                assert_eq!(one(|a| a.sub_ri(d, n, i)), text("sub"));
                if d != Reg::SP {
                    assert_eq!(one(|a| a.adds_ri(d, n, i)), text("adds"));
                    assert_eq!(one(|a| a.subs_ri(d, n, i)), text("subs"));
                }
            }
        }
    }
    for n in [Reg::X0, Reg::X30, Reg::SP] {
        for i in [0u64, 5, 100, 4095] {
            assert_eq!(
                one(|a| a.cmp_ri(n, i)),
                format!("cmp {}, {}", name(n), imm(i as i64))
            );
            assert_eq!(
                one(|a| a.cmn_ri(n, i)),
                format!("cmn {}, {}", name(n), imm(i as i64))
            );
            assert_eq!(
                one(|a| a.cmp_w_ri(n, i)),
                format!("cmp {}, {}", w(n), imm(i as i64))
            );
        }
    }
    assert!(
        Assembler::add_imm_fits(4095)
            && Assembler::add_imm_fits(0x1000)
            && !Assembler::add_imm_fits(4097)
    );
}

/// Every bitmask immediate, by construction: element size, run length, rotation.
fn all_bitmasks() -> Vec<u64> {
    let mut out = Vec::new();
    for size in [2u32, 4, 8, 16, 32, 64] {
        for ones in 1..size {
            for rot in 0..size {
                let mask = if size == 64 {
                    u64::MAX
                } else {
                    (1u64 << size) - 1
                };
                let run = (1u64 << ones) - 1;
                let elem = if rot == 0 {
                    run
                } else {
                    ((run >> rot) | (run << (size - rot))) & mask
                };
                let mut v = 0u64;
                for k in 0..(64 / size) {
                    v |= elem << (k * size);
                }
                out.push(v);
            }
        }
    }
    out
}

#[test]
fn logical_immediates() {
    let all = all_bitmasks();
    assert_eq!(
        all.iter().collect::<std::collections::HashSet<_>>().len(),
        5334,
        "the A64 bitmask immediates"
    );
    for (k, v) in all.iter().enumerate() {
        assert!(Assembler::logical_imm_fits(*v), "{v:#x}");
        if k % 7 == 0 {
            let u = if *v < 10 {
                format!("#{v}")
            } else {
                format!("#{v:#x}")
            };
            let text = one(|a| a.and_ri(Reg::X1, Reg::X2, *v));
            assert_eq!(text, format!("and x1, x2, {u}"));
            assert_eq!(
                one(|a| a.orr_ri(Reg::X3, Reg::X4, *v)),
                format!("orr x3, x4, {u}")
            );
            assert_eq!(
                one(|a| a.eor_ri(Reg::X5, Reg::X6, *v)),
                format!("eor x5, x6, {u}")
            );
            // capstone prints TST's immediate as a signed number.
            let signed = if (*v as i64) < 0 {
                imm(*v as i64)
            } else {
                u.clone()
            };
            assert_eq!(one(|a| a.tst_ri(Reg::X7, *v)), format!("tst x7, {signed}"));
        }
    }
    for bad in [0u64, u64::MAX, 0x1234_5678, 5, 0xffff_0000_ffff_0001] {
        assert!(!Assembler::logical_imm_fits(bad), "{bad:#x}");
    }
}

#[test]
fn shifts_and_conditionals() {
    for d in [Reg::X0, Reg::X9, Reg::X30] {
        for n in [Reg::X1, Reg::X28] {
            for m in [Reg::X2, Reg::X17] {
                let (d_, n_, m_) = (name(d), name(n), name(m));
                assert_eq!(one(|a| a.lsl_rrr(d, n, m)), format!("lsl {d_}, {n_}, {m_}"));
                assert_eq!(one(|a| a.lsr_rrr(d, n, m)), format!("lsr {d_}, {n_}, {m_}"));
                assert_eq!(one(|a| a.asr_rrr(d, n, m)), format!("asr {d_}, {n_}, {m_}"));
            }
            for s in [1u8, 3, 32, 63] {
                assert_eq!(
                    one(|a| a.lsl_ri(d, n, s)),
                    format!("lsl {}, {}, {}", name(d), name(n), imm(s as i64))
                );
                assert_eq!(
                    one(|a| a.lsr_ri(d, n, s)),
                    format!("lsr {}, {}, {}", name(d), name(n), imm(s as i64))
                );
                assert_eq!(
                    one(|a| a.asr_ri(d, n, s)),
                    format!("asr {}, {}, {}", name(d), name(n), imm(s as i64))
                );
            }
        }
    }
    let conds = [
        "eq", "ne", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le",
    ];
    let all = [
        Cond::Eq,
        Cond::Ne,
        Cond::Hs,
        Cond::Lo,
        Cond::Mi,
        Cond::Pl,
        Cond::Vs,
        Cond::Vc,
        Cond::Hi,
        Cond::Ls,
        Cond::Ge,
        Cond::Lt,
        Cond::Gt,
        Cond::Le,
    ];
    for (c, n) in all.iter().zip(conds) {
        assert_eq!(one(|a| a.cset(Reg::X4, *c)), format!("cset x4, {n}"));
        assert_eq!(
            one(|a| a.csel(Reg::X1, Reg::X2, Reg::X3, *c)),
            format!("csel x1, x2, x3, {n}")
        );
        assert_eq!(c.invert().invert(), *c);
    }
}

#[test]
fn branches_reach_their_labels() {
    let mut a = Assembler::new();
    let fwd = a.new_label();
    let back = a.new_label();
    a.bind(back);
    a.b(fwd);
    a.b_cond(Cond::Ne, fwd);
    a.cbz(Reg::X3, back);
    a.cbnz(Reg::X30, fwd);
    a.cbz_w(Reg::X5, back);
    a.cbnz_w(Reg::X0, fwd);
    a.bl(back);
    a.adr(Reg::X9, fwd);
    a.bind(fwd);
    a.blr(Reg::X16);
    a.br(Reg::X17);
    a.ret();
    a.brk(7);
    a.nop();
    let text = disasm(&a.finish().unwrap());
    let target = 0x1000 + 8 * 4;
    assert_eq!(
        text,
        vec![
            format!("b #{target:#x}"),
            format!("b.ne #{target:#x}"),
            "cbz x3, #0x1000".to_string(),
            format!("cbnz x30, #{target:#x}"),
            "cbz w5, #0x1000".to_string(),
            format!("cbnz w0, #{target:#x}"),
            "bl #0x1000".to_string(),
            format!("adr x9, #{target:#x}"),
            "blr x16".to_string(),
            "br x17".to_string(),
            "ret".to_string(),
            "brk #7".to_string(),
            "nop".to_string(),
        ]
    );
}

#[test]
fn branch_errors() {
    let mut a = Assembler::new();
    let l = a.new_label();
    a.b(l);
    assert_eq!(a.finish(), Err(AsmError::UnboundLabel(l)));
    let mut a = Assembler::new();
    let l = a.new_label();
    a.b_cond(Cond::Eq, l);
    for _ in 0..(1 << 18) {
        a.nop();
    }
    a.bind(l);
    assert!(matches!(a.finish(), Err(AsmError::OutOfRange { .. })));
}

#[test]
#[should_panic(expected = "sp is not allowed")]
fn sp_where_only_xzr_is_meaningful_panics() {
    Assembler::new().add_rrr(Reg::X0, Reg::SP, Reg::X1);
}

/// Assembles with the literal pool on; returns the text of the instructions (pool excluded)
/// and the pool value each `ldr` literal loads, in order.
fn pooled(build: impl FnOnce(&mut Assembler)) -> (Vec<String>, Vec<u64>) {
    let mut a = Assembler::new();
    a.set_literal_pool(true);
    build(&mut a);
    let (code, len) = a.finish_code().unwrap();
    let text = disasm(&code[..len]);
    let mut values = Vec::new();
    for (k, t) in text.iter().enumerate() {
        if let Some((_, target)) = t.split_once("#0x") {
            if t.starts_with("ldr ") {
                // capstone shows the literal's address; the code was decoded at 0x1000.
                let at = u64::from_str_radix(target, 16).unwrap() as usize - 0x1000;
                assert!(at >= len && at % 8 == 0, "{t} at {k}");
                values.push(u64::from_le_bytes(code[at..at + 8].try_into().unwrap()));
            }
        }
    }
    (text, values)
}

#[test]
fn constants_of_three_or_four_instructions_load_from_the_literal_pool() {
    for r in [Reg::x(0), Reg::x(16), Reg::x(28)] {
        let wide = 0x7f12_3456_789au64;
        let (text, values) = pooled(|a| a.mov_imm(r, wide));
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(text[0].starts_with(&format!("ldr {r}, #0x")), "{text:?}");
        assert_eq!(values, [wide]);
        // Two instructions or fewer stay in line.
        let (text, values) = pooled(|a| a.mov_imm(r, 0x1234_5678));
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(values.is_empty());
    }
}

#[test]
fn with_pairs_pooled_a_two_instruction_constant_is_one_ldr_and_one_instruction_stays() {
    let pair = 0x1234_5678u64;
    let (text, values) = pooled(|a| {
        a.set_literal_pool_pairs(true);
        a.mov_imm(Reg::x(15), pair);
        a.mov_imm(Reg::x(15), 0x5678);
        a.mov_imm(Reg::x(15), 0xffff_ffff_ffff_1234);
    });
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text[0].starts_with("ldr x15, #0x"), "{text:?}");
    assert_eq!(
        values,
        [pair],
        "one-instruction constants stay in line: {text:?}"
    );
    // Pairs without the pool itself stay in line.
    let mut a = Assembler::new();
    a.set_literal_pool_pairs(true);
    a.mov_imm(Reg::x(15), pair);
    assert_eq!(disasm(&a.finish().unwrap()).len(), 2);
}

#[test]
fn absolute_calls_load_their_target_from_the_literal_pool() {
    let (text, values) = pooled(|a| {
        a.call_abs(0x7f00_1122_3344, Reg::x(17));
        a.call_abs(0x7f00_1122_3344, Reg::x(17));
    });
    assert_eq!(text.len(), 4, "{text:?}");
    assert!(
        text[0].starts_with("ldr x17, #0x") && text[1] == "blr x17",
        "{text:?}"
    );
    assert_eq!(values, [0x7f00_1122_3344, 0x7f00_1122_3344]);
    let mut a = Assembler::new();
    a.call_abs(0x7f00_1122_3344, Reg::x(17));
    assert_eq!(
        disasm(&a.finish().unwrap()).len(),
        4,
        "mov, movk, movk, blr without a pool"
    );
}

/// The instructions `build` assembles with load/store pairing on.
fn paired(build: impl FnOnce(&mut Assembler)) -> Vec<String> {
    let mut a = Assembler::new();
    a.set_pair_loads_stores(true);
    build(&mut a);
    disasm(&a.finish().unwrap())
}

#[test]
fn adjacent_loads_and_stores_off_one_base_become_pairs() {
    let (x0, x1, x2, x19) = (Reg::x(0), Reg::x(1), Reg::x(2), Reg::x(19));
    let text = paired(|a| {
        a.ldr(x0, x19, 0x48);
        a.ldr(x1, x19, 0x50);
        a.str(x0, x19, 0x68);
        a.str(x1, x19, 0x70);
        a.str(x2, x19, 0x78);
    });
    assert_eq!(
        text,
        [
            "ldp x0, x1, [x19, #0x48]",
            "stp x0, x1, [x19, #0x68]",
            "str x2, [x19, #0x78]"
        ]
    );
    // Downwards too (the lower address goes first), negative offsets, and the stack pointer.
    let text = paired(|a| {
        a.str(x0, Reg::SP, 8);
        a.str(x1, Reg::SP, 0);
        a.ldr(x0, x19, -8);
        a.ldr(x1, x19, -16);
    });
    assert_eq!(
        text,
        ["stp x1, x0, [sp]", "ldp x1, x0, [x19, #-0x10]"],
        "{text:?}"
    );
}

#[test]
fn accesses_that_cannot_be_one_pair_stay_apart() {
    let (x0, x1, x19, x20) = (Reg::x(0), Reg::x(1), Reg::x(19), Reg::x(20));
    type Build = Box<dyn Fn(&mut Assembler)>;
    let cases: Vec<(&str, Build)> = vec![
        (
            "other base",
            Box::new(move |a| {
                a.str(x0, x19, 0);
                a.str(x1, x20, 8);
            }),
        ),
        (
            "not eight apart",
            Box::new(move |a| {
                a.str(x0, x19, 0);
                a.str(x1, x19, 16);
            }),
        ),
        (
            "a load then a store",
            Box::new(move |a| {
                a.ldr(x0, x19, 0);
                a.str(x1, x19, 8);
            }),
        ),
        (
            "the first load writes the base",
            Box::new(move |a| {
                a.ldr(x19, x19, 0);
                a.ldr(x1, x19, 8);
            }),
        ),
        (
            "both loads write one register",
            Box::new(move |a| {
                a.ldr(x0, x19, 0);
                a.ldr(x0, x19, 8);
            }),
        ),
        (
            "a label between",
            Box::new(move |a| {
                a.str(x0, x19, 0);
                let l = a.new_label();
                a.bind(l);
                a.str(x1, x19, 8);
            }),
        ),
        (
            "an instruction between",
            Box::new(move |a| {
                a.str(x0, x19, 0);
                a.mov_rr(x1, x0);
                a.str(x1, x19, 8);
            }),
        ),
        (
            "beyond ldp's reach",
            Box::new(move |a| {
                a.str(x0, x19, 512);
                a.str(x1, x19, 520);
            }),
        ),
        (
            "32-bit",
            Box::new(move |a| {
                a.str_w(x0, x19, 0);
                a.str_w(x1, x19, 4);
            }),
        ),
    ];
    for (what, build) in cases {
        let text = paired(build);
        assert!(
            text.iter()
                .all(|t| !t.starts_with("ldp") && !t.starts_with("stp")),
            "{what}: {text:?}"
        );
    }
    // A pair is not extended by a third access, which pairs with a fourth.
    let text = paired(|a| {
        for i in 0..4 {
            a.str(Reg::x(i as u8), x19, 8 * i);
        }
    });
    assert_eq!(text, ["stp x0, x1, [x19]", "stp x2, x3, [x19, #0x10]"]);
    // Off, nothing pairs.
    let mut a = Assembler::new();
    a.ldr(x0, x19, 0x48);
    a.ldr(x1, x19, 0x50);
    assert_eq!(disasm(&a.finish().unwrap()).len(), 2);
}

#[test]
fn a_branch_over_a_paired_access_still_lands_on_an_instruction() {
    // A branch bound before a pair targets the pair; one emitted after it is resolved past it.
    let (x0, x1, x19) = (Reg::x(0), Reg::x(1), Reg::x(19));
    let text = paired(|a| {
        let top = a.new_label();
        let end = a.new_label();
        a.bind(top);
        a.str(x0, x19, 0);
        a.str(x1, x19, 8);
        a.cbz(x0, end);
        a.b(top);
        a.bind(end);
        a.ret();
    });
    assert_eq!(
        text,
        ["stp x0, x1, [x19]", "cbz x0, #0x100c", "b #0x1000", "ret"]
    );
}

#[test]
fn test_bit_branches_encode_every_bit_both_ways_and_reach_32_kib() {
    for bit in [0u8, 1, 31, 32, 62, 63] {
        let mut a = Assembler::new();
        let back = a.new_label();
        a.bind(back);
        a.nop();
        a.tbz(Reg::x(3), bit, back);
        let ahead = a.new_label();
        a.tbnz(Reg::x(30), bit, ahead);
        a.nop();
        a.bind(ahead);
        let text = disasm(&a.finish().unwrap());
        // capstone names the register w<n> for bits below 32.
        let r = |n: u8| format!("{}{n}", if bit < 32 { "w" } else { "x" });
        let b = if bit < 10 {
            format!("{bit}")
        } else {
            format!("{bit:#x}")
        };
        assert_eq!(
            text,
            [
                "nop".to_string(),
                format!("tbz {}, #{b}, #0x1000", r(3)),
                format!("tbnz {}, #{b}, #0x1010", r(30)),
                "nop".to_string(),
            ],
            "bit {bit}"
        );
    }
    // The last reachable word, and one past it.
    for (nops, fits) in [((1 << 13) - 2, true), ((1 << 13) - 1, false)] {
        let mut a = Assembler::new();
        let l = a.new_label();
        a.tbnz(Reg::x(0), 63, l);
        for _ in 0..nops {
            a.nop();
        }
        a.bind(l);
        assert_eq!(a.finish().is_ok(), fits, "{nops} nops");
    }
}

#[test]
fn linked_calls_reach_their_target_in_one_bl_up_to_128_mib() {
    let mut a = Assembler::new();
    a.mov_imm(Reg::X0, 1);
    a.call_linked(0x5500_1000_0000);
    a.call_linked(0x40_0000);
    let links = a.call_links().to_vec();
    let mut code = a.finish().unwrap();
    assert_eq!(links.iter().map(|l| l.at).collect::<Vec<_>>(), [4, 8]);
    assert_eq!(code.len(), 12);
    let base = 0x5500_0000_0000u64;
    assert!(link_call(
        &mut code,
        4,
        base + 4,
        0x5500_1000_0000 - 0x0f00_0000
    ));
    let before = code.clone();
    assert!(
        !link_call(&mut code, 8, base + 8, 0x40_0000),
        "far beyond bl's reach"
    );
    assert!(!link_call(&mut code, 8, base + 8, base + 8 + (128 << 20)));
    assert!(
        !link_call(&mut code, 8, base + 8, base + 10),
        "not a multiple of four"
    );
    assert_eq!(code, before);
    assert!(link_call(
        &mut code,
        8,
        base + 8,
        base + 8 + (128 << 20) - 4
    ));
    assert!(link_call(&mut code, 4, base + 4, base + 4 - (128 << 20)));
    let cs = capstone();
    let insns = cs.disasm_all(&code, base).unwrap();
    let text: Vec<String> = insns
        .iter()
        .map(|i| format!("{} {}", i.mnemonic().unwrap(), i.op_str().unwrap()))
        .collect();
    assert_eq!(
        text[1..],
        [
            format!("bl #{:#x}", base + 4 - (128 << 20)),
            format!("bl #{:#x}", base + 8 + (128 << 20) - 4)
        ]
    );
}

#[test]
fn a_veneer_jumps_to_its_target_through_x16() {
    let v = veneer(0x7f00_1122_3344, None);
    assert_eq!(v.counted, None);
    assert_eq!(disasm(&v.bytes[..8]), ["ldr x16, #0x1008", "br x16"]);
    assert_eq!(v.bytes[8..], 0x7f00_1122_3344u64.to_le_bytes());
}

#[test]
fn a_counting_veneer_counts_its_two_instructions() {
    fn counter() -> Option<usize> {
        Some(0x5000)
    }
    let v = veneer(0x7f00_1122_3344, Some(counter));
    assert_eq!(v.counted, Some((0x5000, 2)));
    let code_len = v.bytes.len() - 8;
    let text = disasm(&v.bytes[..code_len]);
    assert_eq!(text[0], "stp x16, x17, [sp, #-0x10]!");
    assert_eq!(text[text.len() - 1], "br x16");
}
