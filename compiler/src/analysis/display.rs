//! Human-readable dump of an analysis, used by `--emit analysis` and snapshots.

use super::{Analysis, JumpTarget, Terminator};
use crate::revm_api::opcode_name;
use std::fmt;

impl fmt::Display for Analysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "code_len={} blocks={} dynamic_jumps={}",
            self.code_len,
            self.blocks.len(),
            self.has_dynamic_jumps
        )?;
        for (i, b) in self.blocks.iter().enumerate() {
            let flags = [
                (b.is_jumpdest, "jumpdest"),
                (b.is_resume, "resume"),
                (!b.reachable, "unreachable"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join(",");
            let copy = b
                .clone_of
                .map(|o| format!(" copy of {o}"))
                .unwrap_or_default();
            writeln!(
                f,
                "block {i} @{:#x} in={} growth={} delta={} [{flags}]{copy}",
                b.start_pc, b.min_in, b.max_growth, b.delta
            )?;
            if let Some(known) = self.entry_consts.get(i).filter(|k| !k.is_empty()) {
                let words: Vec<String> = known
                    .iter()
                    .map(|(depth, v)| format!("{depth}:{v:#x}"))
                    .collect();
                writeln!(f, "  entry constants (depth:value) {}", words.join(" "))?;
            }
            for inst in b.insts(self) {
                if inst.push_size() > 0 || inst.op == 0x5f {
                    writeln!(
                        f,
                        "  {:#06x} {} {:#x}",
                        inst.pc,
                        opcode_name(inst.op),
                        inst.imm
                    )?;
                } else {
                    writeln!(f, "  {:#06x} {}", inst.pc, opcode_name(inst.op))?;
                }
            }
            // Edges that do not go where pc order and the JUMPDEST map
            // say: those into copies.
            let mut edges = Vec::new();
            let falls = matches!(
                b.term,
                Terminator::Fallthrough | Terminator::JumpI(_) | Terminator::Suspend
            );
            if falls && b.next.is_some_and(|n| n != i + 1) {
                edges.push(format!("next block {}", b.next.unwrap()));
            }
            let jumpdest = match b.term {
                Terminator::Jump(JumpTarget::Static(pc))
                | Terminator::JumpI(JumpTarget::Static(pc)) => self.jumpdests.get(&pc).copied(),
                _ => None,
            };
            if let Some(to) = b.jump_to.filter(|&t| Some(t) != jumpdest) {
                edges.push(format!("to block {to}"));
            }
            let edges = match edges.is_empty() {
                true => String::new(),
                false => format!(" [{}]", edges.join(", ")),
            };
            let term = match b.term {
                Terminator::Fallthrough => "fallthrough".to_string(),
                Terminator::Jump(t) => format!("jump {}", target(t)),
                Terminator::JumpI(t) => format!("jumpi {}", target(t)),
                Terminator::Stop => "stop".into(),
                Terminator::Exit => "exit".into(),
                Terminator::Suspend => "suspend".into(),
            };
            let mut likely: Vec<u32> = self.jump_guesses[i]
                .iter()
                .map(|&t| self.blocks[t].start_pc)
                .collect();
            likely.sort_unstable();
            match likely.is_empty() {
                true => writeln!(f, "  -> {term}{edges}")?,
                false => {
                    let pcs: Vec<String> = likely.iter().map(|pc| format!("{pc:#x}")).collect();
                    writeln!(f, "  -> {term}{edges} (likely {})", pcs.join(" "))?
                }
            }
        }
        Ok(())
    }
}

fn target(t: JumpTarget) -> String {
    match t {
        JumpTarget::Static(pc) => format!("{pc:#x}"),
        JumpTarget::Invalid => "invalid".into(),
        JumpTarget::Dynamic => "dynamic".into(),
    }
}
