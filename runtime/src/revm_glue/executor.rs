//! Runs a compiled contract for one frame on revm's interpreter state.
//!
//! The interpreter struct stays the single source of truth between runs: the
//! stack buffer, shared memory, gas and return data are revm's own, and
//! generated code works on them in place through [`ExecCtx`]. That is what
//! makes suspension trivial (a CALL leaves everything in the interpreter,
//! revm's frame loop inserts the child's result there as usual, and the
//! compiled function resumes at the pc after the CALL) and what makes
//! deoptimisation exact (the interpreter continues from the same state).
//! One thing runs ahead of it: generated code grows memory by a word or
//! two itself, into room the runtime reserved, and every runtime call and
//! exit first hands that growth over (`sync_memory`).

use super::interp_loop::{finish, run_traced};
use super::keccak::keccak256 as keccak;
use super::keccak_memo::KeccakMemo;
use super::sload_memo::{SloadMemo, Word};
use super::trace::TraceStep;
use evmc_interface::{
    exit, ArithFn, Builtins, EntryFn, ExecCtx, ExecOpFn, MEM_INLINE_GROWTH, MEM_QUAD_DIVISOR,
    MEM_WORD_GAS, STACK_LIMIT,
};
use revm::bytecode::opcode as op;
use revm::context_interface::cfg::{GasId, GasParams};
use revm::interpreter::interpreter_types::{Jumps, LoopControl};
use revm::interpreter::{
    interpreter::EthInterpreter, CallInput, GasTable, Host, InstructionContext, InstructionResult,
    InstructionTable, Interpreter, InterpreterAction,
};
use revm::primitives::{Address, KECCAK_EMPTY, U256};
use std::cell::RefCell;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The runtime side of one native run, reached through `ExecCtx::frame`.
pub(super) struct FrameState<H: Host> {
    pub(super) interp: *mut Interpreter<EthInterpreter>,
    pub(super) host: *mut H,
    table: *const InstructionTable<EthInterpreter, H>,
    /// Why the frame ended, when a builtin ended it.
    pub(super) result: InstructionResult,
    /// Where to record the steps handed to the runtime (null: not tracing).
    trace: *mut Vec<TraceStep>,
    depth: usize,
    /// The block's (or transaction's) KECCAK256 memo (null: hash every time).
    pub(super) memo: *mut KeccakMemo,
    /// The storage words this run has read or written (null: none kept).
    pub(super) sloads: *mut SloadMemo,
    /// Memory growths this run asked the runtime for (see `make_room`).
    grows: u32,
    /// The vector behind revm's shared memory (see [`MemoryBuffer`]).
    pub(super) memory_buffer: MemoryBuffer,
}

/// The vector behind revm's shared memory, which the frame's memory ends
/// (`LocalContextTr::shared_memory_buffer`); null when not known. With it
/// the growth generated code did itself is handed over by lengthening the
/// vector in place (`sync_memory`).
pub(crate) type MemoryBuffer = *const RefCell<Vec<u8>>;

/// What compiled runs remember to skip work they did before: KECCAK256
/// results for the block (or transaction), storage words for the run.
#[derive(Default)]
pub(crate) struct Memos {
    pub(super) keccak: KeccakMemo,
    pub(super) sloads: SloadMemo,
}

/// Optional tracing of one native run.
pub(crate) struct Tracing<'a> {
    pub depth: usize,
    pub steps: &'a mut Vec<TraceStep>,
}

/// Runs `entry` on `interp` until the frame returns, halts or suspends for a
/// CALL/CREATE, and returns the action the interpreter would have produced.
///
/// # Safety
/// `entry` must be the entry point of an artifact validated for this
/// bytecode and spec (see [`crate::loader`]).
pub unsafe fn run_native<H: Host>(
    entry: EntryFn,
    interp: &mut Interpreter<EthInterpreter>,
    table: &InstructionTable<EthInterpreter, H>,
    gas_table: &GasTable,
    host: &mut H,
) -> InterpreterAction {
    run_native_with(entry, interp, table, gas_table, host, None, Lent::default())
}

/// What the EVM lends a native run besides the interpreter and the host.
pub(crate) struct Lent<'a> {
    /// Its memos (none: every KECCAK256 hashed, every SLOAD asked).
    pub memos: Option<&'a mut Memos>,
    /// The vector behind its shared memory (null: not known).
    pub memory_buffer: MemoryBuffer,
}

impl Default for Lent<'_> {
    fn default() -> Self {
        Lent {
            memos: None,
            memory_buffer: std::ptr::null(),
        }
    }
}

/// [`run_native`], optionally recording a trace.
///
/// # Safety
/// As [`run_native`].
// Out of line: inlined into revm's handler loop (as LLVM chose to do once
// this file grew the memory hand-over), it pushed revm's frame setup out
// of line there, and usdc_proxy's two short frames ran 2-4% slower.
#[inline(never)]
pub(crate) unsafe fn run_native_with<H: Host>(
    entry: EntryFn,
    interp: &mut Interpreter<EthInterpreter>,
    table: &InstructionTable<EthInterpreter, H>,
    gas_table: &GasTable,
    host: &mut H,
    mut tracing: Option<Tracing<'_>>,
    lent: Lent<'_>,
) -> InterpreterAction {
    interp.bytecode.reset_action();
    if let Some(t) = tracing.as_mut() {
        // Entering (or resuming) the frame is a step of its own: a compiled
        // frame may finish without a single runtime call.
        let pc = interp.bytecode.pc();
        let opcode = interp.bytecode.opcode();
        t.steps
            .push(TraceStep::capture(interp, t.depth, pc, opcode, true));
    }
    let builtins = BuiltinTables::<PlainBuiltins<H>>::get();
    let mut state = FrameState::<H>::new(interp, host, table);
    let memory_buffer = lent.memory_buffer;
    state.memory_buffer = memory_buffer;
    if let Some(m) = lent.memos {
        m.sloads.next_run();
        state.memo = &mut m.keccak;
        state.sloads = &mut m.sloads;
    }
    if let Some(t) = tracing.as_mut() {
        state.trace = &mut *t.steps as *mut _;
        state.depth = t.depth;
    }
    let mut ctx = MaybeUninit::uninit();
    let status = enter(
        entry,
        interp,
        builtins,
        &mut state as *mut FrameState<H> as *mut c_void,
        &mut ctx,
    );
    // SAFETY: `enter` wrote it.
    let ctx = ctx.assume_init_ref();
    if let Some(action) = leave(status, ctx, interp, state.result, memory_buffer) {
        return action;
    }
    match tracing {
        Some(t) => {
            // The interpreter records this pc again, with its gas.
            let pc = ctx.resume_pc as usize;
            let entry = |s: &TraceStep| s.native && s.depth == t.depth && s.pc == pc;
            if t.steps.last().is_some_and(entry) {
                t.steps.pop();
            }
            run_traced(interp, table, gas_table, host, t.depth, t.steps)
        }
        None => interp.run_plain(table, gas_table, host),
    }
}

impl<H: Host> FrameState<H> {
    /// The runtime side of a run on `interp`, not tracing.
    pub(super) fn new(
        interp: &mut Interpreter<EthInterpreter>,
        host: &mut H,
        table: &InstructionTable<EthInterpreter, H>,
    ) -> Self {
        FrameState {
            interp: interp as *mut _,
            host: host as *mut H,
            table: table as *const _,
            result: InstructionResult::Stop,
            trace: std::ptr::null_mut(),
            depth: 0,
            memo: std::ptr::null_mut(),
            sloads: std::ptr::null_mut(),
            grows: 0,
            memory_buffer: std::ptr::null(),
        }
    }
}

/// Plain native runs on host `H`: their opcodes go through [`exec_op`].
struct PlainBuiltins<H>(std::marker::PhantomData<H>);

impl<H: Host> ExecOpKind for PlainBuiltins<H> {
    type Host = H;
    const EXEC: ExecOpFn = exec_op::<H>;
}

/// What a kind of native run does with the opcodes generated code leaves
/// to the interpreter.
pub(super) trait ExecOpKind {
    /// The host the runs are on.
    type Host: Host;
    /// The `exec_op` builtin of such runs.
    const EXEC: ExecOpFn;
}

/// The builtin tables of runs of kind `K`: constants, so a frame's entry
/// passes an address instead of filling a table; one per MULMOD copy.
pub(super) struct BuiltinTables<K>(std::marker::PhantomData<K>);

impl<K: ExecOpKind> BuiltinTables<K> {
    const PORTABLE: Builtins =
        builtins::<K::Host>(K::EXEC, super::arith::mulmod, super::arith::sqrmod);
    /// With MULMOD and its squaring compiled for BMI2 and ADX.
    #[cfg(target_arch = "x86_64")]
    const BMI2: Builtins = builtins::<K::Host>(
        K::EXEC,
        super::arith::mulmod_bmi2,
        super::arith::sqrmod_bmi2,
    );

    /// The table for this CPU: choosing it at each entry costs a cached
    /// feature test, where a MULMOD that chose its copy itself would pay a
    /// load and an indirect jump at every call.
    #[inline]
    pub(super) fn get() -> &'static Builtins {
        #[cfg(target_arch = "x86_64")]
        if super::arith::bmi2_adx() {
            return &Self::BMI2;
        }
        &Self::PORTABLE
    }
}

/// The builtin table of a run whose non-inlined opcodes go through `exec`
/// and MULMOD through `mulmod` (`sqrmod` where both factors are one value).
const fn builtins<H: Host>(exec: ExecOpFn, mulmod: ArithFn, sqrmod: ArithFn) -> Builtins {
    Builtins {
        exec_op: exec,
        mem_expand: mem_expand::<H>,
        div: super::arith::div,
        sdiv: super::arith::sdiv,
        rem: super::arith::rem,
        smod: super::arith::smod,
        addmod: super::arith::addmod,
        mulmod,
        keccak256: keccak256::<H>,
        calldataload,
        mem_reserve: mem_reserve::<H>,
        sqrmod,
    }
}

/// Runs `entry` on `interp` in `ctx`, with `frame` as the runtime side the
/// builtins see (a [`FrameState`], or a struct that starts with one);
/// returns the exit status, `ctx` then holding the context as the code
/// left it. The caller owns the context: returned by value, it was copied
/// twice (232 bytes each way) after every run.
///
/// # Safety
/// As [`run_native`]; `frame` must stay valid for the whole run.
#[inline(always)]
pub(super) unsafe fn enter(
    entry: EntryFn,
    interp: &mut Interpreter<EthInterpreter>,
    builtins: &Builtins,
    frame: *mut c_void,
    ctx: &mut MaybeUninit<ExecCtx>,
) -> u32 {
    let data = interp.stack.data_mut();
    if data.capacity() < STACK_LIMIT as usize {
        // Generated code relies on room for the full stack: never reallocated.
        data.reserve_exact(STACK_LIMIT as usize - data.len());
    }
    let stack_ptr = data.as_mut_ptr() as *mut u8;
    let stack_len = data.len() as u64;
    let (mem_ptr, mem_len) = memory_view(interp);
    let (input_ptr, input_len) = input_view(interp);
    let ctx = ctx.write(ExecCtx {
        gas: interp.gas.remaining(),
        stack: stack_ptr,
        stack_len,
        mem_ptr,
        mem_len,
        input_ptr,
        input_len,
        resume_pc: interp.bytecode.pc() as u64,
        builtins,
        frame,
        caller: address_word(interp.input.caller_address),
        call_value: word_limbs(&interp.input.call_value),
        address: address_word(interp.input.target_address),
        // No room until a runtime grow makes some (`make_room`).
        mem_cap: 0,
        mem_cost: interp.gas.memory().expansion_cost,
        // Written by `evmc_entry`.
        escape: [0; 5],
    });
    entry(ctx)
}

/// Ends the frame as the interpreter would after exit `status` (`result`:
/// why a builtin ended it), or, on a deopt, puts the interpreter at the
/// state the code left and returns `None`: the interpreter continues.
///
/// # Safety
/// `ctx` is the context of a run on `interp` that just exited.
#[inline(always)]
pub(super) unsafe fn leave(
    status: u32,
    ctx: &ExecCtx,
    interp: &mut Interpreter<EthInterpreter>,
    result: InstructionResult,
    memory_buffer: MemoryBuffer,
) -> Option<InterpreterAction> {
    // Each exit leaves in `ctx` exactly the state its kind promises (see
    // `evmc_interface::exit`); halts need none of it. A builtin that ended
    // the frame left the interpreter's memory as its instruction would.
    if status != exit::BUILTIN {
        sync_memory(ctx, interp, memory_buffer);
    }
    Some(match status {
        exit::STOP => {
            interp.gas.set_remaining(ctx.gas);
            finish(interp, InstructionResult::Stop)
        }
        exit::INVALID_JUMP => {
            interp.gas.set_remaining(ctx.gas);
            finish(interp, InstructionResult::InvalidJump)
        }
        // The interpreter's own out-of-gas halt (spends all gas).
        exit::OUT_OF_GAS => finish(interp, InstructionResult::OutOfGas),
        exit::BUILTIN => {
            // The builtin left the interpreter in its exact state.
            interp.bytecode.absolute_jump(ctx.resume_pc as usize);
            finish(interp, result)
        }
        exit::DEOPT => {
            interp.stack.data_mut().set_len(ctx.stack_len as usize);
            interp.gas.set_remaining(ctx.gas);
            interp.bytecode.absolute_jump(ctx.resume_pc as usize);
            return None;
        }
        other => {
            // An artifact from a newer interface would have been refused by
            // the loader; treat anything else as a fatal error of the frame.
            debug_assert!(false, "unknown exit status {other}");
            finish(interp, InstructionResult::FatalExternalError)
        }
    })
}

// The helpers from here to `sync_out` are `#[inline]`: the builtins that
// call them are generic, so they are compiled in the embedding crate, where
// a plain function of this crate stays a call for every opcode left to the
// runtime (host-heavy fixtures 1-3% slower: benches/README.md, "Near-empty
// transactions").
#[inline]
fn memory_view(interp: &mut Interpreter<EthInterpreter>) -> (*mut u8, u64) {
    let mut mem = interp.memory.context_memory_mut();
    (mem.as_mut_ptr(), mem.len() as u64)
}

/// The limbs of `v`, read one by one: the frame's setup has just written
/// them, and a wider load would miss store forwarding.
#[inline]
fn word_limbs(v: &U256) -> [u64; 4] {
    let p = v.as_limbs().as_ptr();
    // SAFETY: four limbs behind a reference.
    std::array::from_fn(|k| unsafe { p.add(k).read_volatile() })
}

/// An address as the EVM word CALLER/ADDRESS push.
#[inline]
fn address_word(a: Address) -> [u64; 4] {
    *U256::from_be_bytes(a.into_word().0).as_limbs()
}

/// The call data where it is now (see `ExecCtx::input_ptr`).
#[inline]
fn input_view(interp: &Interpreter<EthInterpreter>) -> (*const u8, u64) {
    match &interp.input.input {
        CallInput::Bytes(b) => (b.as_ptr(), b.len() as u64),
        CallInput::SharedBuffer(range) => {
            let s = interp.memory.global_slice_range(range.clone());
            (s.as_ptr(), s.len() as u64)
        }
    }
}

/// The memory and call data views after the runtime may have grown memory.
#[inline]
fn refresh_views(ctx: &mut ExecCtx, interp: &mut Interpreter<EthInterpreter>) {
    let (p, l) = memory_view(interp);
    ctx.mem_ptr = p;
    ctx.mem_len = l;
    ctx.mem_cost = interp.gas.memory().expansion_cost;
    // Call data of its own (a transaction's) never moves.
    if let CallInput::SharedBuffer(_) = interp.input.input {
        let (p, l) = input_view(interp);
        ctx.input_ptr = p;
        ctx.input_len = l;
    }
}

#[inline]
unsafe fn sync_in(ctx: &ExecCtx, interp: &mut Interpreter<EthInterpreter>, buffer: MemoryBuffer) {
    interp.stack.data_mut().set_len(ctx.stack_len as usize);
    interp.gas.set_remaining(ctx.gas);
    sync_memory(ctx, interp, buffer);
}

/// Hands the interpreter the memory generated code grew itself (into the
/// room of `ExecCtx::mem_cap`, charging `ExecCtx::mem_cost`): its length and
/// the expansion cost paid for it, as its own growth would have left them.
/// Every runtime call that reads or grows memory, and every exit, starts
/// here. The gas is the caller's to hand over.
#[inline(always)]
fn sync_memory(ctx: &ExecCtx, interp: &mut Interpreter<EthInterpreter>, buffer: MemoryBuffer) {
    // The interpreter's words always cover its memory exactly.
    if ctx.mem_len != interp.gas.memory().words_num as u64 * 32 {
        sync_memory_cold(ctx, interp, buffer);
    }
}

#[cold]
#[inline(never)]
fn sync_memory_cold(
    ctx: &ExecCtx,
    interp: &mut Interpreter<EthInterpreter>,
    buffer: MemoryBuffer,
) -> HandOver {
    let (old, len) = (interp.memory.len(), ctx.mem_len as usize);
    if len <= old {
        // Nothing grown here: the interpreter's words ran ahead of its
        // memory in a growth it refused (out of gas), as it leaves them.
        return HandOver::Nothing;
    }
    debug_assert!(len as u64 <= ctx.mem_cap);
    // SAFETY: a non-null buffer is the shared memory's vector, which the
    // context owns for the whole run.
    let lengthened = unsafe { buffer.as_ref() }.is_some_and(|b| lengthen(b, interp, len));
    if !lengthened {
        lengthen_by_pieces(ctx, interp, old, len);
    }
    let _ = interp
        .gas
        .memory_mut()
        .set_words_num(len / 32, ctx.mem_cost);
    match lengthened {
        true => HandOver::InPlace,
        false => HandOver::ByPieces,
    }
}

/// How `sync_memory_cold` handed memory over (for tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HandOver {
    Nothing,
    InPlace,
    ByPieces,
}

/// Lengthens the frame's memory to `len` bytes in place, the bytes being
/// what generated code left there, if `buffer` is the vector the frame's
/// memory ends. revm's own way to lengthen it writes zeros over
/// them, so the pieces had to be copied aside and back: three passes over
/// every byte grown, about 6% of memory_grow_mstore by32's native time
/// (perf).
fn lengthen(
    buffer: &RefCell<Vec<u8>>,
    interp: &mut Interpreter<EthInterpreter>,
    len: usize,
) -> bool {
    let Some((mut v, start)) = frame_vector(buffer, interp) else {
        return false;
    };
    if start + len > v.capacity() {
        return false;
    }
    // SAFETY: the new bytes are inside the capacity, and initialised:
    // generated code grows memory only inside the room (`mem_cap`), by at
    // most two words at a time, and zeroes both words past the old end
    // before it uses them (the `mem_expand` stub), so every byte past the
    // frame's memory up to `len` was written since the vector last moved.
    unsafe { v.set_len(start + len) };
    true
}

/// `buffer`, borrowed, and where the frame's memory starts in it, if it is
/// the vector the frame's memory ends (as it is while the frame runs: a
/// child's memory is freed before its parent continues).
fn frame_vector<'a>(
    buffer: &'a RefCell<Vec<u8>>,
    interp: &mut Interpreter<EthInterpreter>,
) -> Option<(std::cell::RefMut<'a, Vec<u8>>, usize)> {
    let (frame_memory, len) = memory_view(interp);
    let mut v = buffer.try_borrow_mut().ok()?;
    let start = v.len().checked_sub(len as usize)?;
    (v.as_mut_ptr().wrapping_add(start) == frame_memory).then_some((v, start))
}

/// [`lengthen`] through revm's own interface: each piece of the growth is
/// kept aside on the stack (an allocation per hand-over cost more than the
/// growth saved) while revm zeroes it, then written back.
fn lengthen_by_pieces(
    ctx: &ExecCtx,
    interp: &mut Interpreter<EthInterpreter>,
    old: usize,
    len: usize,
) {
    let mut piece = [0u8; 256];
    let mut at = old;
    while at < len {
        let n = (len - at).min(piece.len());
        // SAFETY: generated code zeroed and wrote these bytes, inside the
        // room `make_room` reserved, so lengthening the buffer within it
        // does not move it; it has not moved since `ctx.mem_ptr` was set
        // (it moves only in runtime calls, which all start here).
        piece[..n].copy_from_slice(unsafe { std::slice::from_raw_parts(ctx.mem_ptr.add(at), n) });
        interp.memory.resize(at + n);
        interp.memory.set(at, &piece[..n]);
        at += n;
    }
}

/// The runtime growth of a run from which on it makes room for generated
/// code to grow memory itself. A run that grows memory a few times gains
/// nothing from the room: making it may move the memory, and the next
/// runtime call's hand-over (`sync_memory`) costs about what the growth
/// saved. A run that keeps growing (allocations in a loop) then grows
/// without runtime calls.
pub const ROOM_AFTER_GROWS: u32 = 8;

/// Makes room past this frame's memory for generated code to grow it
/// itself (`ExecCtx::mem_cap`), when it has none left: as much again as the
/// memory holds, 256 bytes to 64 KiB, so that growing a word at a time
/// costs a runtime call now and then and each byte is made room for about
/// once. Nothing under a gas schedule other than the one generated code
/// charges. Given the vector behind the memory (`buffer`), it reserves the
/// room without writing it; otherwise revm's interface can only lengthen
/// the memory, writing zeros, and shorten it again.
fn make_room(
    ctx: &mut ExecCtx,
    interp: &mut Interpreter<EthInterpreter>,
    gas: &GasParams,
    buffer: MemoryBuffer,
) {
    let len = interp.memory.len();
    if ctx.mem_cap >= (len as u64).saturating_add(MEM_INLINE_GROWTH) {
        return;
    }
    if gas.get(GasId::memory_linear_cost()) != MEM_WORD_GAS
        || gas.get(GasId::memory_quadratic_reduction()) != MEM_QUAD_DIVISOR
    {
        return;
    }
    let room = len.clamp(256, 64 << 10);
    // A vector's capacity never shrinks: the buffer keeps room for
    // `len + room` bytes of this frame, wherever it moves.
    // SAFETY: a non-null buffer is the shared memory's vector, which the
    // context owns for the whole run.
    let reserved = unsafe { buffer.as_ref() }
        .and_then(|b| frame_vector(b, interp))
        .map(|(mut v, _)| v.reserve(room))
        .is_some();
    if !reserved {
        interp.memory.resize(len + room);
        interp.memory.resize(len);
    }
    ctx.mem_cap = (len + room) as u64;
}

#[inline]
fn sync_out(ctx: &mut ExecCtx, interp: &mut Interpreter<EthInterpreter>) {
    ctx.stack_len = interp.stack.len() as u64;
    ctx.gas = interp.gas.remaining();
    refresh_views(ctx, interp);
}

/// The `exec_op` builtin (see [`exec_op_status`]).
unsafe extern "C" fn exec_op<H: Host>(ctx: *mut ExecCtx, opcode: u32, pc: u32) {
    let status = exec_op_status::<H>(ctx, opcode, pc);
    escape_unless_zero(ctx, status);
}

/// `opcode` at `pc` with the interpreter's own instruction, except a
/// repeated SLOAD, which the run's memo answers: 0 to go on, 1 when the
/// frame ended (the reason in the frame state).
pub(super) unsafe fn exec_op_status<H: Host>(ctx: *mut ExecCtx, opcode: u32, pc: u32) -> u32 {
    // Read through a raw pointer: `exec_instruction` takes the frame state
    // mutably; the memo (`sload_memo`) is the EVM's, apart from it. A trace
    // records every SLOAD through the instruction itself.
    let st = (*ctx).frame as *const FrameState<H>;
    let (traced, sloads) = (!(*st).trace.is_null(), (*st).sloads);
    let (len, words) = ((*ctx).stack_len as usize, (*ctx).stack as *mut Word);
    if !traced && !sloads.is_null() {
        let sloads = &mut *sloads;
        match opcode as u8 {
            op::SLOAD if len >= 1 => {
                let key = words.add(len - 1);
                if let Some(v) = sloads.get(&*key) {
                    key.write(v);
                    return 0;
                }
                let k = key.read();
                let r = exec_instruction::<H>(ctx, opcode, pc);
                if r == 0 {
                    sloads.set(k, key.read());
                }
                return r;
            }
            op::SSTORE if len >= 2 => {
                let (k, v) = (words.add(len - 1).read(), words.add(len - 2).read());
                let r = exec_instruction::<H>(ctx, opcode, pc);
                if r == 0 {
                    sloads.set(k, v);
                }
                return r;
            }
            _ => {}
        }
    }
    exec_instruction::<H>(ctx, opcode, pc)
}

/// Runs `opcode` with the interpreter's own instruction on the state in
/// `ctx` (the dynamic part: generated code charged its static gas).
#[inline(always)]
unsafe fn exec_instruction<H: Host>(ctx: *mut ExecCtx, opcode: u32, pc: u32) -> u32 {
    let ctx = &mut *ctx;
    let st = &mut *(ctx.frame as *mut FrameState<H>);
    let interp = &mut *st.interp;
    sync_in(ctx, interp, st.memory_buffer);
    if let Some(trace) = st.trace.as_mut() {
        let step = TraceStep::capture(interp, st.depth, pc as usize, opcode as u8, true);
        // A frame entered (or resumed) right at this builtin already has it.
        if trace.last() != Some(&step) {
            trace.push(step);
        }
    }
    let instruction = (*st.table)[opcode as usize & 0xff];
    let host = &mut *st.host;
    let r = catch_unwind(AssertUnwindSafe(|| {
        instruction.execute(InstructionContext {
            interpreter: &mut *interp,
            host,
        })
    }))
    .unwrap_or(Err(InstructionResult::FatalExternalError));
    sync_out(ctx, interp);
    match r {
        Ok(()) => 0,
        Err(e) => {
            st.result = e;
            // Every builtin opcode is one byte long.
            ctx.resume_pc = pc as u64 + 1;
            1
        }
    }
}

unsafe extern "C" fn mem_expand<H: Host>(
    ctx: *mut ExecCtx,
    offset: u64,
    len: u64,
    offset_overflow: u64,
) {
    let status = mem_expand_status::<H>(ctx, offset, len, offset_overflow);
    escape_unless_zero(ctx, status);
}

/// The `mem_expand` builtin's work: 0 when memory covers the range, 1 when
/// the frame halted there.
#[inline(always)]
unsafe fn mem_expand_status<H: Host>(
    ctx: *mut ExecCtx,
    offset: u64,
    len: u64,
    offset_overflow: u64,
) -> u32 {
    let ctx = &mut *ctx;
    let st = &mut *(ctx.frame as *mut FrameState<H>);
    let interp = &mut *st.interp;
    interp.gas.set_remaining(ctx.gas);
    sync_memory(ctx, interp, st.memory_buffer);
    let gas_params = (*st.host).gas_params();
    // The checks of MLOAD/MSTORE/MSTORE8 after their static gas, in order.
    let r = if offset_overflow != 0 || offset > usize::MAX as u64 {
        Err(InstructionResult::InvalidOperandOOG)
    } else {
        interp.resize_memory(gas_params, offset as usize, len as usize)
    };
    match r {
        Ok(()) => {
            after_runtime_growth(ctx, interp, &mut st.grows, st.memory_buffer, gas_params);
            0
        }
        Err(e) => {
            st.result = e;
            1
        }
    }
}

/// After a growth in the runtime: counts it, makes room for generated code
/// to grow memory itself once a run keeps growing it (`ROOM_AFTER_GROWS`),
/// and hands the gas and the memory's new place back to the context.
#[inline(always)]
fn after_runtime_growth(
    ctx: &mut ExecCtx,
    interp: &mut Interpreter<EthInterpreter>,
    grows: &mut u32,
    buffer: MemoryBuffer,
    gas_params: &GasParams,
) {
    *grows += 1;
    if *grows >= ROOM_AFTER_GROWS {
        make_room(ctx, interp, gas_params, buffer);
    }
    ctx.gas = interp.gas.remaining();
    refresh_views(ctx, interp);
}

/// The `mem_reserve` builtin: pays for a run of memory accesses at once
/// (the static gas of the run and the growth to `end` bytes), or returns 0
/// with nothing changed that the interpreter would see (see
/// `MemReserveFn`). Generated code calls it only when the run's accesses
/// go past memory or its gas check failed.
unsafe extern "C" fn mem_reserve<H: Host>(ctx: *mut ExecCtx, end: u64, static_gas: u64) -> u32 {
    let status = mem_reserve_status::<H>(ctx, end, static_gas);
    if status == RESERVE_HALTED {
        escape(ctx);
    }
    status
}

/// `mem_reserve_status`'s result when the frame halted in the growth.
const RESERVE_HALTED: u32 = 2;

/// The `mem_reserve` builtin's work: 1 when paid for, 0 when the gas does
/// not cover it (nothing changed), [`RESERVE_HALTED`] when the growth was
/// refused with the gas paid.
#[inline(always)]
unsafe fn mem_reserve_status<H: Host>(ctx: *mut ExecCtx, end: u64, static_gas: u64) -> u32 {
    let ctx = &mut *ctx;
    let new_len = match end.checked_next_multiple_of(32) {
        Some(l) if l <= usize::MAX as u64 => l,
        _ => return 0,
    };
    if new_len <= ctx.mem_len {
        return match ctx.gas.checked_sub(static_gas) {
            Some(g) => {
                ctx.gas = g;
                1
            }
            None => 0,
        };
    }
    if new_len <= ctx.mem_cap {
        // Inside the room the runtime made (`make_room`): grown here, as
        // the growth stub of `mem_expand` grows it, under the schedule
        // `mem_cap` implies. The new bytes are zeroed: the hand-over
        // (`lengthen`) relies on every byte up to the length being written.
        let words = new_len / 32;
        let cost = words * MEM_WORD_GAS + words * words / MEM_QUAD_DIVISOR;
        let need = static_gas.saturating_add(cost.saturating_sub(ctx.mem_cost));
        let Some(g) = ctx.gas.checked_sub(need) else {
            return 0;
        };
        std::ptr::write_bytes(
            ctx.mem_ptr.add(ctx.mem_len as usize),
            0,
            (new_len - ctx.mem_len) as usize,
        );
        ctx.gas = g;
        ctx.mem_len = new_len;
        ctx.mem_cost = cost;
        return 1;
    }
    let st = &mut *(ctx.frame as *mut FrameState<H>);
    let interp = &mut *st.interp;
    sync_memory(ctx, interp, st.memory_buffer);
    let gas_params = (*st.host).gas_params();
    // What the interpreter's growth would charge, computed before growing:
    // a growth it refuses for want of gas leaves its memory accounting
    // ahead of its memory, and the interpreter must find the run as it was.
    let words = (new_len / 32) as usize;
    let memory = interp.gas.memory();
    let cost = if words > memory.words_num {
        gas_params
            .memory_cost(words)
            .saturating_sub(memory.expansion_cost)
    } else {
        0
    };
    let Some(g) = ctx.gas.checked_sub(static_gas.saturating_add(cost)) else {
        return 0;
    };
    interp.gas.set_remaining(ctx.gas - static_gas);
    match interp.resize_memory(gas_params, 0, new_len as usize) {
        Ok(()) => {
            debug_assert_eq!(interp.gas.remaining(), g);
            after_runtime_growth(ctx, interp, &mut st.grows, st.memory_buffer, gas_params);
            1
        }
        Err(e) => {
            // Refused with the gas paid (a memory limit): the run's first
            // access past the limit halts so, every access before it
            // having been paid for.
            st.result = e;
            RESERVE_HALTED
        }
    }
}

/// Ends a builtin whose work gave `status`: returns to generated code on
/// 0; otherwise the frame ended (the reason is in the frame state) and
/// control leaves through [`escape`].
///
/// # Safety
/// Called last in a builtin's table entry, with nothing of it left to drop:
/// the jump abandons that frame.
#[inline(always)]
pub(super) unsafe fn escape_unless_zero(ctx: *mut ExecCtx, status: u32) {
    if status != 0 {
        escape(ctx);
    }
}

/// Returns from `evmc_entry` with `exit::BUILTIN`: restores the frame and
/// stack pointers it recorded in `ExecCtx::escape` and jumps to the address
/// recorded there, as LLVM's `llvm.eh.sjlj.longjmp` does. The frames in
/// between (the builtin's, its stub's, generated code's) are abandoned:
/// none holds anything to drop or release, and `evmc_entry` saved every
/// callee-saved register it restores on its way out. Rust allows such a
/// jump over frames without destructors; every caller reaches here only
/// after its work returned, through [`escape_unless_zero`].
#[cold]
#[inline(never)]
unsafe fn escape(ctx: *mut ExecCtx) -> ! {
    let buf = std::ptr::addr_of!((*ctx).escape) as *const u64;
    if buf.add(1).read() == 0 {
        // Not entered through `evmc_entry`: nowhere to go back to.
        std::process::abort();
    }
    #[cfg(target_arch = "x86_64")]
    std::arch::asm!(
        "mov rax, [rdi + 8]",
        "mov rbp, [rdi]",
        "mov rsp, [rdi + 16]",
        "jmp rax",
        in("rdi") buf,
        options(noreturn),
    );
    #[cfg(not(target_arch = "x86_64"))]
    std::process::abort();
}

/// Limb `k` of `words[i]`, read on its own: generated code stored the words
/// limb by limb, and a wider load would miss store forwarding.
#[inline(always)]
unsafe fn limb(words: *const [u64; 4], i: usize, k: usize) -> u64 {
    (words.add(i) as *const u64).add(k).read_volatile()
}

/// The word `words[i]` as a `usize`, if it fits (`as_usize_or_fail`).
#[inline(always)]
unsafe fn word_usize(words: *const [u64; 4], i: usize) -> Option<usize> {
    let high = limb(words, i, 1) | limb(words, i, 2) | limb(words, i, 3);
    let low = limb(words, i, 0);
    (high == 0 && low <= usize::MAX as u64).then_some(low as usize)
}

/// revm's KECCAK256 after the pops, check for check in the same order.
unsafe extern "C" fn keccak256<H: Host>(ctx: *mut ExecCtx, words: *mut [u64; 4]) {
    let status = keccak256_status::<H>(ctx, words);
    escape_unless_zero(ctx, status);
}

/// The `keccak256` builtin's work: 0 with the hash in `words[0]`, 1 when
/// the frame halted there.
#[inline(always)]
unsafe fn keccak256_status<H: Host>(ctx: *mut ExecCtx, words: *mut [u64; 4]) -> u32 {
    let ctx = &mut *ctx;
    let st = &mut *(ctx.frame as *mut FrameState<H>);
    let interp = &mut *st.interp;
    let host = &mut *st.host;
    let buffer = st.memory_buffer;
    interp.gas.set_remaining(ctx.gas);
    // Whether the interpreter's memory was brought up to date and grown.
    let mut grown = false;
    let r = (|| {
        let len = word_usize(words, 1).ok_or(InstructionResult::InvalidOperandOOG)?;
        let gas_params = host.gas_params();
        if !interp
            .gas
            .record_regular_cost(gas_params.keccak256_cost(len))
        {
            return Err(InstructionResult::OutOfGas);
        }
        if len == 0 {
            return Ok(KECCAK_EMPTY);
        }
        let from = word_usize(words, 0).ok_or(InstructionResult::InvalidOperandOOG)?;
        let hash = |input: &[u8]| match st.memo.as_mut() {
            Some(memo) => memo.hash(input),
            None => keccak(input),
        };
        if from
            .checked_add(len)
            .is_some_and(|end| end as u64 <= ctx.mem_len)
        {
            // Inside the memory generated code sees: no growth, so the
            // interpreter's would charge nothing, and the words generated
            // code grew itself need not be handed over for a hash (mapping
            // slots hash the scratch words, after an allocation or not).
            // SAFETY: `mem_ptr` holds `mem_len` bytes.
            return Ok(hash(std::slice::from_raw_parts(ctx.mem_ptr.add(from), len)));
        }
        sync_memory(ctx, interp, buffer);
        grown = true;
        interp.resize_memory(gas_params, from, len)?;
        let input = interp.memory.slice_len(from, len);
        Ok(hash(input.as_ref()))
    })();
    ctx.gas = interp.gas.remaining();
    match r {
        Ok(hash) => {
            if grown {
                refresh_views(ctx, interp);
            }
            // Big-endian bytes to little-endian limbs.
            let out = words as *mut u64;
            for k in 0..4 {
                let b: [u8; 8] = hash[24 - 8 * k..32 - 8 * k].try_into().unwrap();
                out.add(k).write_volatile(u64::from_be_bytes(b));
            }
            0
        }
        Err(e) => {
            // The frame halts here with its memory as the interpreter's.
            sync_memory(ctx, interp, buffer);
            st.result = e;
            1
        }
    }
}

/// revm's CALLDATALOAD after the pop: the bytes from the offset up to the
/// end of the call data, zero-padded.
unsafe extern "C" fn calldataload(ctx: *mut ExecCtx, words: *mut [u64; 4]) {
    let ctx = &*ctx;
    let mut word = [0u8; 32];
    if let Some(offset) = word_usize(words, 0) {
        let len = ctx.input_len as usize;
        if offset < len {
            let count = 32.min(len - offset);
            std::ptr::copy_nonoverlapping(ctx.input_ptr.add(offset), word.as_mut_ptr(), count);
        }
    }
    let out = words as *mut u64;
    for k in 0..4 {
        let b: [u8; 8] = word[24 - 8 * k..32 - 8 * k].try_into().unwrap();
        out.add(k).write_volatile(u64::from_be_bytes(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use revm::bytecode::Bytecode;
    use revm::interpreter::interpreter::ExtBytecode;
    use revm::interpreter::{InputsImpl, SharedMemory};
    use revm::primitives::hardfork::SpecId;
    use std::rc::Rc;

    fn interpreter() -> Interpreter<EthInterpreter> {
        let code = Bytecode::new_raw(vec![0x00].into());
        Interpreter::new(
            SharedMemory::new(),
            ExtBytecode::new(code),
            InputsImpl::default(),
            false,
            SpecId::OSAKA,
            1_000_000,
        )
    }

    fn ctx_on(interp: &mut Interpreter<EthInterpreter>) -> ExecCtx {
        let (mem_ptr, mem_len) = memory_view(interp);
        ExecCtx {
            gas: interp.gas.remaining(),
            stack: std::ptr::null_mut(),
            stack_len: 0,
            mem_ptr,
            mem_len,
            input_ptr: std::ptr::null(),
            input_len: 0,
            resume_pc: 0,
            builtins: std::ptr::null(),
            frame: std::ptr::null_mut(),
            caller: [0; 4],
            call_value: [0; 4],
            address: [0; 4],
            mem_cap: 0,
            mem_cost: interp.gas.memory().expansion_cost,
            escape: [0; 5],
        }
    }

    /// Growth generated code did itself (as the `mem_expand` stub does it:
    /// zeroed words written past the interpreter's memory, inside the room)
    /// reaches the interpreter with the bytes written into it, the words
    /// and their cost; the interpreter's own growth from there on charges
    /// as if it had grown the memory itself. Both ways: in place, given the
    /// vector behind the memory, for a first frame and for a child frame
    /// whose memory follows its parent's; by pieces without it, or given a
    /// vector the memory is not in.
    #[test]
    fn memory_grown_in_the_room_is_handed_over_with_its_bytes() {
        let unrelated = RefCell::new(Vec::with_capacity(4096));
        for (child, buffer) in [(false, true), (true, true), (false, false), (true, false)] {
            hand_over(child, buffer, &unrelated);
        }
        assert!(
            unrelated.borrow().is_empty(),
            "a foreign vector was changed"
        );
    }

    fn hand_over(child: bool, use_buffer: bool, unrelated: &RefCell<Vec<u8>>) {
        let label = format!("child frame: {child}, buffer given: {use_buffer}");
        let gas = GasParams::new_spec(SpecId::OSAKA);
        let shared = Rc::new(RefCell::new(Vec::with_capacity(4096)));
        let mut parent = interpreter();
        parent.memory = SharedMemory::new_with_buffer(shared.clone());
        parent.resize_memory(&gas, 0, 64).unwrap();
        parent.memory.set(0, &[9; 64]);
        let mut interp = interpreter();
        interp.memory = match child {
            true => parent.memory.new_child_context(),
            false => SharedMemory::new_with_buffer(shared.clone()),
        };
        let below = if child { 64 } else { 0 };
        let buffer: MemoryBuffer = match use_buffer {
            true => &*shared,
            false => unrelated,
        };
        if !child {
            // A first frame's memory is the whole vector.
            shared.borrow_mut().clear();
        }
        interp.resize_memory(&gas, 0, 32).unwrap();
        interp.memory.set(0, &[7; 32]);
        let mut ctx = ctx_on(&mut interp);
        make_room(&mut ctx, &mut interp, &gas, buffer);
        assert_eq!(ctx.mem_cap, 32 + 256, "{label}");
        assert_eq!(shared.borrow().len(), below + 32, "{label}");
        assert!(shared.borrow().capacity() >= below + 32 + 256, "{label}");
        assert_eq!(
            memory_view(&mut interp),
            (ctx.mem_ptr, 32),
            "the room moved memory ({label})"
        );

        // 300 bytes more (10 words), more than one piece of the hand-over.
        let words = (32 + 300usize).div_ceil(32);
        for (i, b) in (32..words * 32).enumerate() {
            unsafe { ctx.mem_ptr.add(b).write(i as u8 | 1) };
        }
        ctx.mem_len = words as u64 * 32;
        ctx.mem_cost = gas.memory_cost(words);
        let how = sync_memory_cold(&ctx, &mut interp, buffer);
        let expected = match use_buffer {
            true => HandOver::InPlace,
            false => HandOver::ByPieces,
        };
        assert_eq!(how, expected, "{label}");

        let mem = interp.memory.context_memory().to_vec();
        assert_eq!(mem.len(), words * 32, "{label}");
        assert_eq!(&mem[..32], &[7; 32], "{label}");
        assert!(
            mem[32..].iter().enumerate().all(|(i, &b)| b == i as u8 | 1),
            "{label}"
        );
        assert_eq!(shared.borrow().len(), below + words * 32, "{label}");
        assert!(shared.borrow()[..below].iter().all(|&b| b == 9), "{label}");
        assert_eq!(interp.gas.memory().words_num, words, "{label}");
        assert_eq!(
            interp.gas.memory().expansion_cost,
            gas.memory_cost(words),
            "{label}"
        );

        // The next growth charges only the words past the handed-over ones.
        let before = interp.gas.remaining();
        interp.resize_memory(&gas, words * 32, 32).unwrap();
        let due = gas.memory_cost(words + 1) - gas.memory_cost(words);
        assert_eq!(before - interp.gas.remaining(), due, "{label}");
        // Nothing to hand over twice.
        let ctx = ctx_on(&mut interp);
        sync_memory(&ctx, &mut interp, buffer);
        assert_eq!(interp.memory.len(), (words + 1) * 32, "{label}");
    }

    /// No room under a memory schedule other than the one generated code
    /// charges, nor while room is left.
    #[test]
    fn room_only_under_the_schedule_generated_code_charges() {
        let mut gas = GasParams::new_spec(SpecId::OSAKA);
        let mut interp = interpreter();
        interp.resize_memory(&gas, 0, 64).unwrap();
        let mut ctx = ctx_on(&mut interp);
        make_room(&mut ctx, &mut interp, &gas, std::ptr::null());
        assert_eq!(ctx.mem_cap, 64 + 256);
        ctx.mem_cap = 1000;
        make_room(&mut ctx, &mut interp, &gas, std::ptr::null());
        assert_eq!(ctx.mem_cap, 1000, "room was left");

        gas.override_gas([(GasId::memory_quadratic_reduction(), 1024)]);
        let mut ctx = ctx_on(&mut interp);
        make_room(&mut ctx, &mut interp, &gas, std::ptr::null());
        assert_eq!(ctx.mem_cap, 0);
    }
}
