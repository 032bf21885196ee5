//! Lists which legacy-encoded instructions the interpreter implements, by mnemonic,
//! grouped by iced-x86's CPUID feature: `cargo run -p popek-interp --example coverage`.

use popek_cpu::iced_x86::{Code, CpuidFeature, EncodingKind, Instruction, Mnemonic, OpKind};
use popek_interp::dispatch;
use std::collections::BTreeMap;

fn main() {
    // feature → mnemonic → (supported forms, all forms)
    let mut table: BTreeMap<String, BTreeMap<String, (u32, u32)>> = BTreeMap::new();
    for code in Code::values() {
        let op = code.op_code();
        if op.encoding() != EncodingKind::Legacy || !op.mode32() || code.mnemonic() == Mnemonic::INVALID {
            continue;
        }
        let feature = code.cpuid_features().first().copied().unwrap_or(CpuidFeature::INTEL8086);
        let mut insn = Instruction::default();
        insn.set_code(code);
        // Lookups look at operand kinds too: make a memory operand look like one.
        for i in 0..op.op_count().min(2) {
            if format!("{:?}", op.op_kind(i)).starts_with("mem") {
                insn.set_op_kind(i, OpKind::Memory);
            }
        }
        let supported = dispatch::is_supported(&insn);
        let e = table.entry(format!("{feature:?}")).or_default().entry(format!("{:?}", code.mnemonic())).or_default();
        e.0 += supported as u32;
        e.1 += 1;
    }
    for (feature, mnemonics) in &table {
        let (yes, no): (Vec<_>, Vec<_>) = mnemonics.iter().partition(|(_, (s, _))| *s > 0);
        println!("{feature}:");
        if !yes.is_empty() {
            println!("  implemented: {}", yes.iter().map(|(m, _)| m.to_lowercase()).collect::<Vec<_>>().join(" "));
        }
        if !no.is_empty() {
            println!("  unsupported: {}", no.iter().map(|(m, _)| m.to_lowercase()).collect::<Vec<_>>().join(" "));
        }
    }
}
