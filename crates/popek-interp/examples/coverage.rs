//! Lists which legacy-encoded instructions the interpreter implements, by mnemonic,
//! grouped by iced-x86's CPUID feature: `cargo run -p popek-interp --example coverage`.
//! Instructions popek's CPU does not have and answers with #UD (POPCNT) are listed apart,
//! and so are those its decoder never produces because a P6 reads their bytes as an
//! older instruction (TZCNT is BSF there: `popek_cpu::block::DECODER_OPTIONS`).

use popek_cpu::iced_x86::{Code, CpuidFeature, EncodingKind, Instruction, Mnemonic, OpKind};
use popek_interp::dispatch;
use std::collections::BTreeMap;

/// How many forms (codes) of one mnemonic are implemented, raise #UD, or are never
/// decoded because popek's CPU reads their bytes as an older instruction.
#[derive(Default)]
struct Forms {
    supported: u32,
    undefined: u32,
    older: u32,
}

fn main() {
    // feature → mnemonic → its forms
    let mut table: BTreeMap<String, BTreeMap<String, Forms>> = BTreeMap::new();
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
        let older = matches!(code.mnemonic(), Mnemonic::Tzcnt | Mnemonic::Lzcnt | Mnemonic::Wbnoinvd);
        let group = if older { "older" } else { dispatch::classify(&insn).0 };
        let e = table.entry(format!("{feature:?}")).or_default().entry(format!("{:?}", code.mnemonic())).or_default();
        e.supported += (group != "unsupported" && group != "invalid") as u32;
        e.undefined += (group == "invalid") as u32;
        e.older += older as u32;
    }
    for (feature, mnemonics) in &table {
        let (older, rest): (Vec<_>, Vec<_>) = mnemonics.iter().partition(|(_, e)| e.older > 0);
        let (ud, rest): (Vec<_>, Vec<_>) = rest.into_iter().partition(|(_, e)| e.undefined > 0);
        let (yes, no): (Vec<_>, Vec<_>) = rest.into_iter().partition(|(_, e)| e.supported > 0);
        println!("{feature}:");
        if !yes.is_empty() {
            println!("  implemented: {}", yes.iter().map(|(m, _)| m.to_lowercase()).collect::<Vec<_>>().join(" "));
        }
        if !older.is_empty() {
            let names = older.iter().map(|(m, _)| m.to_lowercase()).collect::<Vec<_>>().join(" ");
            println!("  read as the older instruction, F3 ignored (BSF, BSR, WBINVD): {names}");
        }
        if !ud.is_empty() {
            println!(
                "  #UD (not on popek's CPU): {}",
                ud.iter().map(|(m, _)| m.to_lowercase()).collect::<Vec<_>>().join(" ")
            );
        }
        if !no.is_empty() {
            println!("  unsupported: {}", no.iter().map(|(m, _)| m.to_lowercase()).collect::<Vec<_>>().join(" "));
        }
    }
}
