//! Disassembly of generated code with capstone, for dumps and tests.

use super::Isa;
use capstone::prelude::*;

/// One line per instruction: `offset: mnemonic operands`.
pub fn disassemble(isa: Isa, code: &[u8], address: u64) -> Result<String, String> {
    let cs = match isa {
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
    .map_err(|e| e.to_string())?;
    let insns = cs.disasm_all(code, address).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for i in insns.iter() {
        out.push_str(&format!(
            "{:#06x}: {} {}\n",
            i.address() - address,
            i.mnemonic().unwrap_or("?"),
            i.op_str().unwrap_or("")
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
