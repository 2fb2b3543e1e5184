//! Instruction decoding.

use crate::revm_api::U256;
use revm::bytecode::opcode as op;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// One decoded instruction.
pub struct Inst {
    /// Its pc.
    pub pc: u32,
    /// Its opcode byte.
    pub op: u8,
    /// PUSH immediate (zero for other opcodes). Bytes cut off by the end of
    /// the code read as zero, as in the interpreter's padded copy.
    pub imm: U256,
}

impl Inst {
    /// Bytes of PUSH immediate (0 for other opcodes).
    pub fn push_size(&self) -> u32 {
        if (op::PUSH1..=op::PUSH32).contains(&self.op) {
            (self.op - op::PUSH1 + 1) as u32
        } else {
            0
        }
    }
    /// The pc of the next instruction.
    pub fn next_pc(&self) -> u32 {
        self.pc + 1 + self.push_size()
    }
}

/// Decodes `code` into instructions and appends the implicit STOP the
/// interpreter executes when it runs past the end.
pub fn decode(code: &[u8]) -> Vec<Inst> {
    let mut out = Vec::with_capacity(code.len() / 2 + 1);
    let mut pc = 0usize;
    while pc < code.len() {
        let opcode = code[pc];
        let mut imm = U256::ZERO;
        let mut size = 1usize;
        if (op::PUSH1..=op::PUSH32).contains(&opcode) {
            let n = (opcode - op::PUSH1 + 1) as usize;
            let mut buf = [0u8; 32];
            let avail = code.len().saturating_sub(pc + 1).min(n);
            buf[32 - n..32 - n + avail].copy_from_slice(&code[pc + 1..pc + 1 + avail]);
            imm = U256::from_be_bytes(buf);
            size += n;
        }
        out.push(Inst {
            pc: pc as u32,
            op: opcode,
            imm,
        });
        pc += size;
    }
    out.push(Inst {
        pc: pc as u32,
        op: op::STOP,
        imm: U256::ZERO,
    });
    out
}
