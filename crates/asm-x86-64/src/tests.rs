//! Every instruction form checked against capstone: each test assembles one instruction for many
//! registers, displacements and immediates, decodes it with capstone, and compares capstone's
//! mnemonic and decoded operands (registers by name, memory as base + displacement, immediates as
//! numbers) with the instruction asked for.

use super::*;
use capstone::arch::x86::X86OperandType;
use capstone::arch::ArchOperand;
use capstone::prelude::*;

fn capstone() -> Capstone {
    Capstone::new()
        .x86()
        .mode(arch::x86::ArchMode::Mode64)
        .syntax(arch::x86::ArchSyntax::Intel)
        .detail(true)
        .build()
        .unwrap()
}

/// Canonical text of the single instruction `asm` emitted: `mnemonic op, op` with memory as
/// `[base+disp]` and immediates in decimal. Fails unless capstone decodes exactly one
/// instruction covering every byte.
#[track_caller]
fn one(build: impl FnOnce(&mut Assembler)) -> String {
    let mut a = Assembler::new();
    build(&mut a);
    let code = a.finish().unwrap();
    decode_all(&code, 1).remove(0)
}

#[track_caller]
fn decode_all(code: &[u8], expected: usize) -> Vec<String> {
    let cs = capstone();
    let insns = cs.disasm_all(code, 0x1000).unwrap();
    assert_eq!(insns.len(), expected, "{code:02x?}");
    let total: usize = insns.iter().map(|i| i.bytes().len()).sum();
    assert_eq!(
        total,
        code.len(),
        "capstone left bytes undecoded: {code:02x?}"
    );
    insns
        .iter()
        .map(|i| {
            let detail = cs.insn_detail(i).unwrap();
            let ops: Vec<String> = detail
                .arch_detail()
                .operands()
                .into_iter()
                .map(|op| match op {
                    ArchOperand::X86Operand(x) => match x.op_type {
                        X86OperandType::Reg(r) => cs.reg_name(r).unwrap(),
                        X86OperandType::Imm(v) => v.to_string(),
                        X86OperandType::Mem(m) => {
                            assert_eq!(m.index().0, 0, "unexpected index register");
                            format!("[{}{:+}]", cs.reg_name(m.base()).unwrap(), m.disp())
                        }
                        other => format!("{other:?}"),
                    },
                    other => format!("{other:?}"),
                })
                .collect();
            format!("{} {}", i.mnemonic().unwrap(), ops.join(", "))
                .trim_end()
                .to_string()
        })
        .collect()
}

const DISPS: [i32; 8] = [0, 8, -8, 127, 128, -128, -129, 0x12345];
const IMMS: [i32; 9] = [0, 1, -1, 127, 128, -128, -129, i32::MAX, i32::MIN];

fn r32(r: Reg) -> String {
    const N: [&str; 16] = [
        "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d",
        "r12d", "r13d", "r14d", "r15d",
    ];
    N[r as usize].to_string()
}

fn r8(r: Reg) -> String {
    const N: [&str; 16] = [
        "al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil", "r8b", "r9b", "r10b", "r11b", "r12b",
        "r13b", "r14b", "r15b",
    ];
    N[r as usize].to_string()
}

fn mem(b: Reg, d: i32) -> String {
    format!("[{b}{d:+}]")
}

#[test]
fn mov_register_to_register() {
    for d in Reg::ALL {
        for s in Reg::ALL {
            assert_eq!(one(|a| a.mov_rr(d, s)), format!("mov {d}, {s}"));
        }
    }
}

#[test]
fn mov_immediates_pick_the_shortest_form() {
    let values = [
        0i64,
        1,
        0x7fff_ffff,
        0xffff_ffff,
        -1,
        -0x8000_0000,
        0x1_0000_0000,
        i64::MIN,
        i64::MAX,
        0x7f12_3456_789a,
    ];
    for r in Reg::ALL {
        for v in values {
            let text = one(|a| a.mov_ri(r, v));
            let expect = if u32::try_from(v).is_ok() {
                format!("mov {}, {}", r32(r), v)
            } else if i32::try_from(v).is_ok() {
                format!("mov {r}, {v}")
            } else {
                format!("movabs {r}, {v}")
            };
            assert_eq!(text, expect);
        }
    }
    let mut a = Assembler::new();
    a.mov_ri(Reg::Rax, 5);
    assert_eq!(a.offset(), 5, "mov eax, imm32 is five bytes");
}

#[test]
fn loads_and_stores_with_every_base_and_displacement() {
    for r in Reg::ALL {
        for b in Reg::ALL {
            for d in DISPS {
                let m = Mem::new(b, d);
                assert_eq!(one(|a| a.load64(r, m)), format!("mov {r}, {}", mem(b, d)));
                assert_eq!(
                    one(|a| a.load32(r, m)),
                    format!("mov {}, {}", r32(r), mem(b, d))
                );
                assert_eq!(
                    one(|a| a.load8(r, m)),
                    format!("movzx {}, {}", r32(r), mem(b, d))
                );
                assert_eq!(one(|a| a.store64(m, r)), format!("mov {}, {r}", mem(b, d)));
                assert_eq!(
                    one(|a| a.store32(m, r)),
                    format!("mov {}, {}", mem(b, d), r32(r))
                );
                assert_eq!(
                    one(|a| a.store8(m, r)),
                    format!("mov {}, {}", mem(b, d), r8(r))
                );
                assert_eq!(one(|a| a.lea(r, m)), format!("lea {r}, {}", mem(b, d)));
            }
        }
    }
}

#[test]
fn store_immediates() {
    for b in Reg::ALL {
        for d in DISPS {
            for i in IMMS {
                assert_eq!(
                    one(|a| a.store64_imm(Mem::new(b, d), i)),
                    format!("mov {}, {i}", mem(b, d))
                );
            }
        }
    }
}

fn alu_name(op: Alu) -> &'static str {
    match op {
        Alu::Add => "add",
        Alu::Or => "or",
        Alu::And => "and",
        Alu::Sub => "sub",
        Alu::Xor => "xor",
        Alu::Cmp => "cmp",
    }
}

#[test]
fn alu_forms() {
    for op in [Alu::Add, Alu::Or, Alu::And, Alu::Sub, Alu::Xor, Alu::Cmp] {
        let n = alu_name(op);
        for d in Reg::ALL {
            for s in Reg::ALL {
                assert_eq!(one(|a| a.alu_rr(op, d, s)), format!("{n} {d}, {s}"));
            }
            for i in IMMS {
                assert_eq!(one(|a| a.alu_ri(op, d, i)), format!("{n} {d}, {i}"));
            }
            for b in [Reg::Rsp, Reg::Rbp, Reg::R12, Reg::R13, Reg::Rax, Reg::R9] {
                for disp in DISPS {
                    assert_eq!(
                        one(|a| a.alu_rm(op, d, Mem::new(b, disp))),
                        format!("{n} {d}, {}", mem(b, disp))
                    );
                    assert_eq!(
                        one(|a| a.alu_mr(op, Mem::new(b, disp), d)),
                        format!("{n} {}, {d}", mem(b, disp))
                    );
                }
            }
        }
        for b in Reg::ALL {
            for disp in DISPS {
                for i in IMMS {
                    assert_eq!(
                        one(|a| a.alu_mi(op, Mem::new(b, disp), i)),
                        format!("{n} {}, {i}", mem(b, disp))
                    );
                }
            }
        }
    }
    let mut a = Assembler::new();
    a.alu_ri(Alu::Add, Reg::Rax, 1);
    assert_eq!(a.offset(), 4, "imm8 form used");
}

#[test]
fn compares_and_tests() {
    for r in Reg::ALL {
        for i in IMMS {
            // capstone shows 32-bit immediates either signed or as their unsigned bits.
            let t = one(|a| a.cmp32_ri(r, i));
            assert!(
                t == format!("cmp {}, {i}", r32(r)) || t == format!("cmp {}, {}", r32(r), i as u32),
                "{t}"
            );
            assert_eq!(one(|a| a.test_ri(r, i)), format!("test {r}, {i}"));
            let t = one(|a| a.cmp32_mi(Mem::new(r, 0x180), i));
            assert!(
                t == format!("cmp {}, {i}", mem(r, 0x180))
                    || t == format!("cmp {}, {}", mem(r, 0x180), i as u32),
                "{t}"
            );
        }
        for s in Reg::ALL {
            assert_eq!(one(|a| a.test_rr(r, s)), format!("test {r}, {s}"));
            assert_eq!(
                one(|a| a.test32_rr(r, s)),
                format!("test {}, {}", r32(r), r32(s))
            );
            assert_eq!(one(|a| a.imul_rr(r, s)), format!("imul {r}, {s}"));
        }
    }
}

#[test]
fn scalar_doubles_through_sse_registers() {
    for r in Reg::ALL {
        for x in [0u8, 1, 7] {
            assert_eq!(one(|a| a.movq_xr(x, r)), format!("movq xmm{x}, {r}"));
            assert_eq!(one(|a| a.movq_rx(r, x)), format!("movq {r}, xmm{x}"));
        }
    }
    for (op, name) in [
        (SseOp::Add, "addsd"),
        (SseOp::Sub, "subsd"),
        (SseOp::Mul, "mulsd"),
    ] {
        for (d, s) in [(0u8, 1u8), (1, 0), (7, 3)] {
            assert_eq!(
                one(|a| a.sse_sd(op, d, s)),
                format!("{name} xmm{d}, xmm{s}")
            );
        }
    }
    for (pred, name) in [
        (SseCmp::Eq, "cmpeqsd"),
        (SseCmp::Lt, "cmpltsd"),
        (SseCmp::Le, "cmplesd"),
        (SseCmp::Neq, "cmpneqsd"),
    ] {
        for (d, s) in [(0u8, 1u8), (1, 0), (7, 3)] {
            assert_eq!(
                one(|a| a.cmpsd(pred, d, s)),
                format!("{name} xmm{d}, xmm{s}")
            );
        }
    }
}

#[test]
fn shifts_and_unary() {
    for r in Reg::ALL {
        for (op, n) in [
            (Shift::Shl, "shl"),
            (Shift::Shr, "shr"),
            (Shift::Sar, "sar"),
        ] {
            for amount in [1u8, 3, 63] {
                assert_eq!(
                    one(|a| a.shift_ri(op, r, amount)),
                    format!("{n} {r}, {amount}")
                );
            }
            assert_eq!(one(|a| a.shift_cl(op, r)), format!("{n} {r}, cl"));
        }
        assert_eq!(one(|a| a.neg(r)), format!("neg {r}"));
        assert_eq!(one(|a| a.not(r)), format!("not {r}"));
        assert_eq!(one(|a| a.push(r)), format!("push {r}"));
        assert_eq!(one(|a| a.pop(r)), format!("pop {r}"));
        assert_eq!(one(|a| a.call_r(r)), format!("call {r}"));
        assert_eq!(one(|a| a.jmp_r(r)), format!("jmp {r}"));
    }
}

const CONDS: [(Cond, &str); 16] = [
    (Cond::O, "o"),
    (Cond::No, "no"),
    (Cond::B, "b"),
    (Cond::Ae, "ae"),
    (Cond::E, "e"),
    (Cond::Ne, "ne"),
    (Cond::Be, "be"),
    (Cond::A, "a"),
    (Cond::S, "s"),
    (Cond::Ns, "ns"),
    (Cond::P, "p"),
    (Cond::Np, "np"),
    (Cond::L, "l"),
    (Cond::Ge, "ge"),
    (Cond::Le, "le"),
    (Cond::G, "g"),
];

#[test]
fn setcc_and_cmov() {
    for (c, n) in CONDS {
        for r in Reg::ALL {
            let mut a = Assembler::new();
            a.setcc(c, r);
            let text = decode_all(&a.finish().unwrap(), 2);
            assert_eq!(
                text,
                vec![
                    format!("set{n} {}", r8(r)),
                    format!("movzx {}, {}", r32(r), r8(r))
                ]
            );
            for s in [Reg::Rax, Reg::R11, Reg::Rdi] {
                assert_eq!(one(|a| a.cmov(c, r, s)), format!("cmov{n} {r}, {s}"));
            }
        }
        assert_eq!(c.invert().invert(), c);
        assert_ne!(c.invert(), c);
    }
}

#[test]
fn branches_reach_their_labels() {
    for (c, n) in CONDS {
        // forward, patched at finish
        let mut a = Assembler::new();
        let l = a.new_label();
        a.jcc(c, l);
        a.nop();
        a.bind(l);
        a.ret();
        let text = decode_all(&a.finish().unwrap(), 3);
        assert_eq!(text[0], format!("j{n} {}", 0x1000 + 7));
        // backward, near: rel8
        let mut a = Assembler::new();
        let l = a.new_label();
        a.bind(l);
        a.nop();
        a.jcc(c, l);
        let code = a.finish().unwrap();
        assert_eq!(code.len(), 3);
        assert_eq!(decode_all(&code, 2)[1], format!("j{n} {}", 0x1000));
    }
    // far backward jmp: rel32
    let mut a = Assembler::new();
    let l = a.new_label();
    a.bind(l);
    for _ in 0..300 {
        a.nop();
    }
    a.jmp(l);
    let code = a.finish().unwrap();
    assert_eq!(decode_all(&code, 301)[300], format!("jmp {}", 0x1000));
    assert_eq!(code.len(), 305);
}

/// A forward `jcc` and a forward `jmp` over `gap` one-byte instructions, emitted into `a`.
fn forward_jumps_over(mut a: Assembler, gap: usize) -> Assembler {
    let (l1, l2) = (a.new_label(), a.new_label());
    a.jcc(Cond::E, l1);
    a.jmp(l2);
    for _ in 0..gap {
        a.nop();
    }
    a.bind(l1);
    a.bind(l2);
    a.ret();
    a
}

#[test]
fn forward_jumps_found_near_take_the_short_form_on_a_second_emission() {
    // Around the edge of rel8 reach: the second emission is never longer and every jump still
    // lands on its label; near ones are two bytes.
    for gap in [
        0, 1, 60, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 200,
    ] {
        let first = forward_jumps_over(Assembler::new(), gap);
        let near = first.near_jumps();
        let long = first.finish().unwrap();
        assert_eq!(long.len(), 6 + 5 + gap + 1);
        let second = forward_jumps_over(Assembler::with_near_jumps(near.clone()), gap);
        // A jump made short is not offered again (a long one may now be near: one more
        // emission could shorten it too).
        let again = second.near_jumps();
        assert!(
            near.iter().zip(&again).all(|(n, a)| !(*n && *a)),
            "gap {gap}"
        );
        let code = second.finish().unwrap();
        let sizes = [if near[0] { 2 } else { 6 }, if near[1] { 2 } else { 5 }];
        assert_eq!(code.len(), sizes[0] + sizes[1] + gap + 1, "gap {gap}");
        let text = decode_all(&code, 2 + gap + 1);
        let target = 0x1000 + code.len() - 1;
        assert_eq!(text[0], format!("je {target}"));
        assert_eq!(text[1], format!("jmp {target}"));
        // Within reach in the first emission (jcc: 5 + gap bytes to go): short.
        assert_eq!(near[0], 5 + gap + 4 <= 127, "gap {gap}");
        assert_eq!(near[1], gap + 4 <= 127, "gap {gap}");
    }
    assert!(forward_jumps_over(Assembler::new(), 10).near_jumps() == [true, true]);
}

#[test]
fn calls_reach_their_labels_both_ways() {
    let mut a = Assembler::new();
    let back = a.new_label();
    let ahead = a.new_label();
    a.bind(back);
    a.nop();
    a.call(ahead);
    a.call(back);
    a.bind(ahead);
    a.ret();
    let text = decode_all(&a.finish().unwrap(), 4);
    assert_eq!(text[1], format!("call {}", 0x1000 + 11));
    assert_eq!(text[2], format!("call {}", 0x1000));
}

#[test]
fn unbound_labels_are_errors() {
    let mut a = Assembler::new();
    let l = a.new_label();
    a.jmp(l);
    assert_eq!(a.finish(), Err(AsmError::UnboundLabel(l)));
}

#[test]
fn misc_single_byte_instructions() {
    assert_eq!(one(|a| a.ret()), "ret");
    assert_eq!(one(|a| a.int3()), "int3");
    assert_eq!(one(|a| a.nop()), "nop");
}

#[test]
fn store_32_bit_immediates() {
    let cs = capstone();
    for b in Reg::ALL {
        for d in DISPS {
            for i in IMMS {
                let mut a = Assembler::new();
                a.store32_imm(Mem::new(b, d), i);
                let code = a.finish().unwrap();
                let text = one(|a| a.store32_imm(Mem::new(b, d), i));
                let as_u32 = format!("mov {}, {}", mem(b, d), i as u32);
                let as_i32 = format!("mov {}, {i}", mem(b, d));
                assert!(text == as_u32 || text == as_i32, "{text}");
                let insns = cs.disasm_all(&code, 0x1000).unwrap();
                let op_str = insns.iter().next().unwrap().op_str().unwrap().to_string();
                assert!(op_str.starts_with("dword ptr"), "{op_str}");
            }
        }
    }
}

/// Assembles one instruction that refers to the literal pool, and returns capstone's text of
/// it (the pool excluded) and the 64-bit value found where its RIP-relative operand points.
fn one_pooled(build: impl FnOnce(&mut Assembler)) -> (String, u64) {
    let mut a = Assembler::new();
    a.set_literal_pool(true);
    build(&mut a);
    let (code, len) = a.finish_code().unwrap();
    let text = decode_all(&code[..len], 1).remove(0);
    let disp: i64 = text
        .rsplit_once("[rip")
        .and_then(|(_, rest)| rest.split(']').next())
        .and_then(|d| d.trim_start_matches('+').parse().ok())
        .unwrap_or_else(|| panic!("no rip-relative operand in {text}"));
    let at = (len as i64 + disp) as usize;
    assert_eq!(at % 8, 0, "pool entries are aligned");
    let value = u64::from_le_bytes(code[at..at + 8].try_into().unwrap());
    (text, value)
}

const WIDE: [i64; 3] = [0x7f12_3456_789a, -0x1234_5678_9abc, i64::MIN];

#[test]
fn wide_constants_load_from_the_literal_pool() {
    for r in Reg::ALL {
        for v in WIDE {
            let (text, found) = one_pooled(|a| a.mov_ri(r, v));
            assert!(text.starts_with(&format!("mov {r}, [rip")), "{text}");
            assert_eq!(found, v as u64);
            let (text, found) = one_pooled(|a| a.alu_r_literal(Alu::Cmp, r, v as u64));
            assert!(text.starts_with(&format!("cmp {r}, [rip")), "{text}");
            assert_eq!(found, v as u64);
        }
        // Constants with a 32-bit form stay immediates.
        assert_eq!(
            one(|a| {
                a.set_literal_pool(true);
                a.mov_ri(r, -5)
            }),
            format!("mov {r}, -5")
        );
    }
}

#[test]
fn absolute_calls_go_through_the_literal_pool() {
    let (text, found) = one_pooled(|a| a.call_abs(0x7f00_1122_3344, Reg::R11));
    assert!(text.starts_with("call [rip"), "{text}");
    assert_eq!(found, 0x7f00_1122_3344);
    let mut a = Assembler::new();
    a.call_abs(0x7f00_1122_3344, Reg::R11);
    let code = a.finish().unwrap();
    assert_eq!(
        decode_all(&code, 2),
        [
            format!("movabs r11, {}", 0x7f00_1122_3344u64),
            "call r11".to_string()
        ]
    );
}

#[test]
fn each_distinct_literal_is_pooled_once() {
    let mut a = Assembler::new();
    a.set_literal_pool(true);
    for _ in 0..3 {
        a.mov_ri(Reg::Rax, 0x7f12_3456_789a);
        a.call_abs(0x7f00_1122_3344, Reg::R11);
    }
    let (code, len) = a.finish_code().unwrap();
    assert_eq!(len, 3 * (7 + 6));
    assert_eq!(code.len(), len.next_multiple_of(8) + 16);
}

/// Decodes `code` at `address` with capstone's own text (targets as absolute addresses).
fn text_at(code: &[u8], address: u64) -> Vec<String> {
    let cs = capstone();
    let insns = cs.disasm_all(code, address).unwrap();
    insns
        .iter()
        .map(|i| format!("{} {}", i.mnemonic().unwrap(), i.op_str().unwrap_or("")))
        .collect()
}

#[test]
fn linked_calls_reach_their_target_in_one_instruction_up_to_two_gib() {
    let mut a = Assembler::new();
    a.mov_ri(Reg::Rax, 1);
    a.call_linked(0x7f00_1122_3344);
    a.call_linked(0x1000);
    let links = a.call_links().to_vec();
    let mut code = a.finish().unwrap();
    assert_eq!(links.iter().map(|l| l.at).collect::<Vec<_>>(), [5, 10]);
    assert_eq!(code.len(), 15, "two 5-byte calls after `mov eax, 1`");
    let base = 0x7f00_0000_0000u64;
    assert!(link_call(&mut code, 5, base + 5, 0x7f00_1122_3344));
    // 0x1000 from near 0x7f00_0000_0000 is far beyond rel32: the call is left as it was.
    let before = code.clone();
    assert!(!link_call(&mut code, 10, base + 10, 0x1000));
    assert_eq!(code, before);
    assert!(link_call(
        &mut code,
        10,
        base + 10,
        base + 10 + 5 - (1 << 31)
    ));
    assert!(!link_call(
        &mut code,
        10,
        base + 10,
        base + 10 + 5 - (1 << 31) - 1
    ));
    assert!(link_call(
        &mut code,
        10,
        base + 10,
        base + 10 + 5 + (1 << 31) - 1
    ));
    assert!(!link_call(
        &mut code,
        10,
        base + 10,
        base + 10 + 5 + (1 << 31)
    ));
    let text = text_at(&code, base);
    assert_eq!(text[1], format!("call {:#x}", 0x7f00_1122_3344u64));
    assert_eq!(
        text[2],
        format!("call {:#x}", base + 10 + 5 + (1 << 31) - 1)
    );
}

#[test]
fn a_veneer_jumps_to_its_target_through_the_address_after_it() {
    let v = veneer(0x7f00_1122_3344, None);
    assert_eq!(v.counted, None);
    let (insns, pool) = v.bytes.split_at(6);
    assert_eq!(text_at(insns, 0x1000), ["jmp qword ptr [rip + 2]"]);
    assert_eq!(pool[2..], 0x7f00_1122_3344u64.to_le_bytes());
}

#[test]
fn a_counting_veneer_counts_its_one_jump() {
    fn counter() -> Option<usize> {
        Some(0x5000)
    }
    let v = veneer(0x7f00_1122_3344, Some(counter));
    assert_eq!(v.counted, Some((0x5000, 1)));
    let text = text_at(&v.bytes, 0x1000);
    assert_eq!(text[0], "push rax");
    assert!(
        text.iter().any(|t| t.starts_with("jmp qword ptr [rip")),
        "{text:?}"
    );
}
