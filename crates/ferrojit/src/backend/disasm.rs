//! Disassembly of generated code with capstone, for dumps and tests.

use super::Isa;
use capstone::prelude::*;
use ferrojit_asm_core::{CallLink, CountPoint};

fn capstone(isa: Isa) -> Result<Capstone, String> {
    match isa {
        Isa::X86_64 => Capstone::new()
            .x86()
            .mode(arch::x86::ArchMode::Mode64)
            .syntax(arch::x86::ArchSyntax::Intel)
            .build(),
        Isa::Aarch64 => Capstone::new()
            .arm64()
            .mode(arch::arm64::ArchMode::Arm)
            .build(),
    }
    .map_err(|e| e.to_string())
}

/// One line per instruction: `offset: mnemonic operands`.
pub fn disassemble(isa: Isa, code: &[u8], address: u64) -> Result<String, String> {
    disassemble_linked(isa, code, address, &[])
}

/// As [`disassemble`], with each of `links` (calls linked only at install, whose displacement
/// is still zero) shown with the address it will call: `call 0x7f0012345678 (linked)`.
pub fn disassemble_linked(
    isa: Isa,
    code: &[u8],
    address: u64,
    links: &[CallLink],
) -> Result<String, String> {
    let cs = capstone(isa)?;
    let insns = cs.disasm_all(code, address).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for i in insns.iter() {
        let offset = i.address() - address;
        let operands = match links.iter().find(|l| l.at as u64 == offset) {
            Some(l) => format!("{:#x} (linked)", l.target),
            None => i.op_str().unwrap_or("").to_string(),
        };
        out.push_str(&format!(
            "{offset:#06x}: {} {operands}\n",
            i.mnemonic().unwrap_or("?"),
        ));
    }
    Ok(out)
}

/// The number of instructions in `code`.
pub fn count_instructions(isa: Isa, code: &[u8]) -> usize {
    disassemble(isa, code, 0)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// For code that counts its own execution (the instructions `code`, its count points in code
/// order): each point's counter and the instructions of its stretch, from the point's `start`
/// to the next point's counting sequence, or through the first unconditional jump or return
/// before it (what follows one is reached only at a later point).
pub fn counted_stretches(isa: Isa, code: &[u8], points: &[CountPoint]) -> Vec<(usize, u32)> {
    if points.is_empty() {
        return Vec::new();
    }
    let insns = capstone(isa)
        .and_then(|cs| {
            let insns = cs.disasm_all(code, 0).map_err(|e| e.to_string())?;
            Ok(insns
                .iter()
                .map(|i| (i.address() as usize, ends_straight_line(isa, i.mnemonic())))
                .collect::<Vec<_>>())
        })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(points.len());
    for (k, p) in points.iter().enumerate() {
        let end = points.get(k + 1).map_or(code.len(), |next| next.begin);
        let first = insns.partition_point(|&(at, _)| at < p.start);
        let mut n = 0u32;
        for &(at, last) in &insns[first..] {
            if at >= end {
                break;
            }
            n += 1;
            if last {
                break;
            }
        }
        out.push((p.counter, n));
    }
    out
}

/// An instruction after which the straight line does not go on: an unconditional jump or
/// return (a call returns to the next instruction; a conditional branch is followed by a
/// count point).
fn ends_straight_line(isa: Isa, mnemonic: Option<&str>) -> bool {
    let m = mnemonic.unwrap_or("");
    match isa {
        Isa::X86_64 => m == "jmp" || m == "ret" || m == "ud2",
        Isa::Aarch64 => m == "b" || m == "br" || m == "ret" || m == "brk",
    }
}
