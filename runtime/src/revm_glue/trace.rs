//! Opcode traces for explaining a divergence between native and interpreted
//! execution of the same transaction.
//!
//! Interpreted frames are traced at every instruction. Compiled frames only
//! surface at the instructions they hand to the runtime (calls, storage,
//! hashing, ...): everything in between was fused by the compiler, and the
//! gas of a compiled frame is charged ahead per segment, so it is not
//! comparable mid-frame. Those runtime points are exactly where the stack is
//! materialised, so comparing stacks there locates a divergence to within
//! one stretch of inlined code.

use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::Interpreter;
use revm::primitives::U256;
use std::fmt;

/// How many stack items (from the top) a step records.
const STACK_ITEMS: usize = 4;

/// One executed instruction of an opcode trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceStep {
    /// Call depth of the frame.
    pub depth: usize,
    /// Its pc.
    pub pc: usize,
    /// Its opcode.
    pub opcode: u8,
    /// Gas left before the instruction; `None` inside compiled frames.
    pub gas: Option<u64>,
    /// Stack height before it.
    pub stack_len: usize,
    /// Top of the stack first.
    pub stack_top: Vec<U256>,
    /// Whether the step was taken by compiled code.
    pub native: bool,
}

impl TraceStep {
    pub(crate) fn capture(
        interp: &Interpreter<EthInterpreter>,
        depth: usize,
        pc: usize,
        opcode: u8,
        native: bool,
    ) -> Self {
        let data = interp.stack.data();
        TraceStep {
            depth,
            pc,
            opcode,
            gas: (!native).then(|| interp.gas.remaining()),
            stack_len: data.len(),
            stack_top: data.iter().rev().take(STACK_ITEMS).copied().collect(),
            native,
        }
    }

    /// Same place and same visible stack (gas compared when both have it).
    fn agrees_with(&self, other: &TraceStep) -> bool {
        self.depth == other.depth
            && self.pc == other.pc
            && self.opcode == other.opcode
            && self.stack_len == other.stack_len
            && self.stack_top == other.stack_top
            && (self.gas.is_none() || other.gas.is_none() || self.gas == other.gas)
    }
}

impl fmt::Display for TraceStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = evmc_compiler::revm_api::opcode_name(self.opcode);
        write!(f, "depth {} pc {:>5} {:<14}", self.depth, self.pc, name)?;
        match self.gas {
            Some(g) => write!(f, " gas {g:>10}")?,
            None => write!(f, " gas     native")?,
        }
        write!(f, " stack[{}]", self.stack_len)?;
        for v in &self.stack_top {
            write!(f, " {v:#x}")?;
        }
        Ok(())
    }
}

/// Where a native trace first disagrees with the interpreter's trace of the
/// same transaction: `(index in interp, index in native)`. Steps of compiled
/// frames are matched against the next interpreter step at the same depth and
/// pc. The interpreter steps skipped on the way must be inlined code of that
/// frame, or the inlined tail of frames that just ended (depth only winding
/// down).
pub fn first_divergence(interp: &[TraceStep], native: &[TraceStep]) -> Option<(usize, usize)> {
    let mut j = 0;
    let mut wind = usize::MAX;
    for (i, step) in native.iter().enumerate() {
        loop {
            let Some(cand) = interp.get(j) else {
                return Some((j, i));
            };
            let tail_of_ended_frame = cand.depth > step.depth && cand.depth <= wind;
            let inlined_here = step.native
                && cand.depth == step.depth
                && (cand.pc, cand.opcode) != (step.pc, step.opcode);
            if !(tail_of_ended_frame || inlined_here) {
                break;
            }
            wind = cand.depth;
            j += 1;
        }
        match interp.get(j) {
            Some(cand) if cand.agrees_with(step) => {
                wind = cand.depth;
                j += 1;
            }
            _ => return Some((j, i)),
        }
    }
    // The same holds for what the interpreter did after the last native step.
    for k in j.max(1)..interp.len() {
        if interp[k].depth > interp[k - 1].depth {
            return Some((k, native.len()));
        }
    }
    None
}

/// A human-readable report of both traces around their first divergence.
pub fn divergence_report(interp: &[TraceStep], native: &[TraceStep], context: usize) -> String {
    let mut out = String::new();
    let Some((j, i)) = first_divergence(interp, native) else {
        out.push_str(&format!(
            "traces agree on every common step ({} interpreter steps, {} native steps)\n",
            interp.len(),
            native.len()
        ));
        return out;
    };
    out.push_str("first divergence:\n");
    out.push_str(&format!(
        "  interpreter: {}\n",
        interp
            .get(j)
            .map_or("<end of trace>".into(), |s| s.to_string())
    ));
    out.push_str(&format!(
        "  native:      {}\n",
        native
            .get(i)
            .map_or("<end of trace>".into(), |s| s.to_string())
    ));
    out.push_str("interpreter steps before it:\n");
    for s in &interp[j.saturating_sub(context)..j.min(interp.len())] {
        out.push_str(&format!("    {s}\n"));
    }
    out.push_str("native steps before it:\n");
    for s in &native[i.saturating_sub(context)..i.min(native.len())] {
        out.push_str(&format!("    {s}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(depth: usize, pc: usize, native: bool, top: u64) -> TraceStep {
        TraceStep {
            depth,
            pc,
            opcode: 0x54,
            gas: (!native).then_some(100),
            stack_len: 1,
            stack_top: vec![U256::from(top)],
            native,
        }
    }

    #[test]
    fn native_steps_skip_inlined_interpreter_steps() {
        let interp = vec![
            step(0, 0, false, 1),
            step(0, 1, false, 1),
            step(0, 2, false, 1),
        ];
        let native = vec![step(0, 2, true, 1)];
        assert_eq!(first_divergence(&interp, &native), None);
    }

    #[test]
    fn stack_difference_is_reported_at_the_native_step() {
        let interp = vec![
            step(0, 0, false, 1),
            step(0, 2, false, 1),
            step(1, 0, false, 5),
        ];
        let native = vec![step(0, 2, true, 2), step(1, 0, false, 5)];
        assert_eq!(first_divergence(&interp, &native), Some((1, 0)));
    }

    #[test]
    fn a_compiled_frame_may_end_in_inlined_code() {
        let interp = vec![
            step(0, 5, false, 1),
            step(1, 0, false, 1),
            step(1, 1, false, 1),
            step(0, 6, false, 1),
        ];
        let native = vec![
            step(0, 5, true, 1),
            step(1, 0, true, 1),
            step(0, 6, true, 1),
        ];
        assert_eq!(first_divergence(&interp, &native), None);
        // A call the native run did not make is a divergence.
        let native = vec![step(0, 5, true, 1), step(0, 6, true, 1)];
        assert_eq!(first_divergence(&interp, &native), Some((1, 1)));
    }

    #[test]
    fn interpreted_child_frames_compare_gas() {
        let interp = vec![step(0, 2, false, 1), step(1, 0, false, 5)];
        let mut child = step(1, 0, false, 5);
        child.gas = Some(99);
        let native = vec![step(0, 2, true, 1), child];
        assert_eq!(first_divergence(&interp, &native), Some((1, 1)));
    }
}
