//! Transaction traces of real blocks, built with revm-inspectors'
//! `TracingInspector` (no opcode steps): geth's call tracer, geth's
//! prestate tracer and parity's transaction traces; and where two sets of
//! traces of the same block first differ.
//!
//! A [`TxTracer`] is attached to the EVM for one transaction and then
//! consumed by [`TxTracer::finish`]: each transaction starts from a fresh
//! tracer, so no trace carries anything over from the one before.

use alloy_rpc_types_eth::TransactionInfo;
use alloy_rpc_types_trace::geth::{CallConfig, PreStateConfig};
use alloy_rpc_types_trace::parity::TraceType;
use revm::context::ContextTr;
use revm::context_interface::result::{HaltReason, ResultAndState};
use revm::database_interface::DatabaseRef;
use revm::inspector::{Inspector, JournalExt};
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::{CallInputs, CallOutcome, CreateInputs, CreateOutcome, Interpreter};
use revm::primitives::{Address, Log, B256, U256};
use revm_inspectors::tracing::{TracingInspector, TracingInspectorConfig};
use serde_json::Value;
use std::fmt;

/// A tracer whose output `replay --trace` prints and compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TraceKind {
    /// geth's `callTracer` with `withLog: true`: the call tree with logs.
    Call,
    /// geth's `prestateTracer` (default mode): the accounts and slots the
    /// transaction read, as they were before it.
    Prestate,
    /// parity's `trace_transaction`: the flat list of localized call
    /// traces (no reward traces).
    Parity,
}

impl TraceKind {
    pub const ALL: [TraceKind; 3] = [TraceKind::Call, TraceKind::Prestate, TraceKind::Parity];

    /// `call`, `prestate` or `parity`: the name on the command line and
    /// the field of the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            TraceKind::Call => "call",
            TraceKind::Prestate => "prestate",
            TraceKind::Parity => "parity",
        }
    }
}

impl fmt::Display for TraceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The call tracer's options: logs included, since compiled frames must
/// report LOGs exactly too.
fn call_config() -> CallConfig {
    CallConfig {
        with_log: Some(true),
        ..Default::default()
    }
}

fn parity_types() -> revm::primitives::HashSet<TraceType> {
    [TraceType::Trace].into_iter().collect()
}

/// The tracers of one transaction: one `TracingInspector` for the geth
/// traces (call and prestate share it) and one for parity's, whose
/// configuration differs (it leaves precompile calls out). Either is
/// absent when no kind needs it.
#[derive(Debug)]
pub struct TxTracer {
    kinds: Vec<TraceKind>,
    geth: Option<TracingInspector>,
    parity: Option<TracingInspector>,
}

impl TxTracer {
    /// Fresh tracers for `kinds` (duplicates ignored; output in the order
    /// of [`TraceKind`]).
    pub fn new(kinds: &[TraceKind]) -> Self {
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        let has = |k| kinds.contains(&k);
        let geth = (has(TraceKind::Call) || has(TraceKind::Prestate)).then(|| {
            let mut config = TracingInspectorConfig::none();
            if has(TraceKind::Call) {
                config.merge(TracingInspectorConfig::from_geth_call_config(&call_config()));
            }
            if has(TraceKind::Prestate) {
                config.merge(TracingInspectorConfig::from_geth_prestate_config(
                    &PreStateConfig::default(),
                ));
            }
            TracingInspector::new(config)
        });
        let parity = has(TraceKind::Parity).then(|| {
            TracingInspector::new(TracingInspectorConfig::from_parity_config(&parity_types()))
        });
        Self {
            kinds,
            geth,
            parity,
        }
    }

    /// The kinds traced.
    pub fn kinds(&self) -> &[TraceKind] {
        &self.kinds
    }

    /// The traces of the transaction this tracer watched, which had gas
    /// limit `gas_limit` and ended with `res`; `db` is the state before the
    /// transaction (for the prestate tracer). Each trace is JSON text, as
    /// the RPC methods return it.
    pub fn finish<DB: DatabaseRef>(
        mut self,
        gas_limit: u64,
        res: &ResultAndState<HaltReason>,
        db: DB,
        info: TransactionInfo,
    ) -> Result<TxTraces, DB::Error> {
        let mut traces = Vec::with_capacity(self.kinds.len());
        if let Some(geth) = &mut self.geth {
            // The top call's `gas` is the transaction's limit in geth (the
            // inspector saw what was left after the intrinsic gas).
            geth.set_transaction_gas_limit(gas_limit);
            let builder = geth.geth_builder();
            for kind in &self.kinds {
                match kind {
                    TraceKind::Call => {
                        let frame =
                            builder.geth_call_traces(call_config(), res.result.tx_gas_used());
                        traces.push((TraceKind::Call, json(&frame)));
                    }
                    TraceKind::Prestate => {
                        let frame =
                            builder.geth_prestate_traces(res, &PreStateConfig::default(), &db)?;
                        traces.push((TraceKind::Prestate, json(&frame)));
                    }
                    TraceKind::Parity => {}
                }
            }
        }
        if let Some(parity) = self.parity {
            let list = parity
                .into_parity_builder()
                .into_localized_transaction_traces(info);
            traces.push((TraceKind::Parity, json(&list)));
        }
        traces.sort_by_key(|(k, _)| *k);
        Ok(TxTraces {
            index: info.index.unwrap_or_default() as usize,
            hash: info.hash.unwrap_or_default(),
            traces,
        })
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("traces serialise")
}

/// Every hook goes to each tracer present, as it would to that tracer
/// alone; `step` and `step_end` too (a `FrameLevel` wrapper around this
/// drops them, and the tracers record no steps anyway).
impl<CTX> Inspector<CTX, EthInterpreter> for TxTracer
where
    CTX: ContextTr<Journal: JournalExt>,
{
    fn initialize_interp(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX) {
        for t in self.tracers() {
            t.initialize_interp(interp, context);
        }
    }

    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX) {
        for t in self.tracers() {
            t.step(interp, context);
        }
    }

    fn step_end(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX) {
        for t in self.tracers() {
            t.step_end(interp, context);
        }
    }

    fn log(&mut self, context: &mut CTX, log: Log) {
        for t in self.tracers() {
            t.log(context, log.clone());
        }
    }

    fn log_full(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX, log: Log) {
        for t in self.tracers() {
            t.log_full(interp, context, log.clone());
        }
    }

    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        // Tracers observe; none of them answers a call itself.
        let mut out = None;
        for t in self.tracers() {
            out = out.or(t.call(context, inputs));
        }
        out
    }

    fn call_end(&mut self, context: &mut CTX, inputs: &CallInputs, outcome: &mut CallOutcome) {
        for t in self.tracers() {
            t.call_end(context, inputs, outcome);
        }
    }

    fn create(&mut self, context: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        let mut out = None;
        for t in self.tracers() {
            out = out.or(t.create(context, inputs));
        }
        out
    }

    fn create_end(
        &mut self,
        context: &mut CTX,
        inputs: &CreateInputs,
        outcome: &mut CreateOutcome,
    ) {
        for t in self.tracers() {
            t.create_end(context, inputs, outcome);
        }
    }

    fn selfdestruct(&mut self, contract: Address, target: Address, value: U256) {
        for t in self.tracers() {
            <TracingInspector as Inspector<CTX, EthInterpreter>>::selfdestruct(
                t, contract, target, value,
            );
        }
    }
}

impl TxTracer {
    fn tracers(&mut self) -> impl Iterator<Item = &mut TracingInspector> {
        self.geth.iter_mut().chain(self.parity.iter_mut())
    }
}

/// The traces of one transaction of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxTraces {
    /// Position in the block.
    pub index: usize,
    pub hash: B256,
    /// JSON text of each trace, by kind, in the order of [`TraceKind`].
    pub traces: Vec<(TraceKind, String)>,
}

impl TxTraces {
    /// `{"tx_index", "tx_hash", KIND: trace...}` (the traces parsed back
    /// into JSON values), with `block` first when given.
    pub fn to_json(&self, block: Option<u64>) -> Value {
        let mut o = serde_json::Map::new();
        if let Some(b) = block {
            o.insert("block".into(), b.into());
        }
        o.insert("tx_index".into(), self.index.into());
        o.insert("tx_hash".into(), self.hash.to_string().into());
        for (kind, text) in &self.traces {
            let v = serde_json::from_str(text).expect("traces are JSON");
            o.insert(kind.name().into(), v);
        }
        Value::Object(o)
    }

    /// One line of JSON without parsing the traces back: the block number,
    /// the transaction's index and hash, each trace under its kind's name.
    pub fn json_line(&self, block: u64) -> String {
        let mut line = format!(
            "{{\"block\":{block},\"tx_index\":{},\"tx_hash\":\"{}\"",
            self.index, self.hash
        );
        for (kind, text) in &self.traces {
            line.push_str(&format!(",\"{kind}\":{text}"));
        }
        line.push('}');
        line
    }
}

/// The first transaction whose traces differ between `a` and `b` (two runs
/// of the same block, named `a_name` and `b_name`), with the first trace
/// kind and JSON path where they differ; `None` when all are identical.
pub fn trace_difference(
    a: &[TxTraces],
    b: &[TxTraces],
    a_name: &str,
    b_name: &str,
) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!(
            "traces of {} transactions {a_name}, of {} {b_name}",
            a.len(),
            b.len()
        ));
    }
    for (x, y) in a.iter().zip(b) {
        let tx = format!("transaction {} ({})", x.index, x.hash);
        if (x.index, x.hash) != (y.index, y.hash) {
            return Some(format!(
                "{tx} {a_name} is transaction {} ({}) {b_name}",
                y.index, y.hash
            ));
        }
        let kinds = |t: &TxTraces| t.traces.iter().map(|(k, _)| *k).collect::<Vec<_>>();
        if kinds(x) != kinds(y) {
            return Some(format!(
                "{tx}: traced {:?} {a_name}, {:?} {b_name}",
                kinds(x),
                kinds(y)
            ));
        }
        for ((kind, tx_a), (_, tx_b)) in x.traces.iter().zip(&y.traces) {
            if tx_a == tx_b {
                continue;
            }
            let parsed = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
            let at = match json_difference(&parsed(tx_a), &parsed(tx_b)) {
                Some(d) => format!("at {}: {} {a_name}, {} {b_name}", d.path, d.a, d.b),
                // Same values, different text (key order): not expected
                // from one serialiser, but still a difference.
                None => "in its JSON text".to_string(),
            };
            return Some(format!("{tx}: {kind} trace differs {at}"));
        }
    }
    None
}

/// Where two JSON documents first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonDifference {
    /// `$` for the root, then `.field` and `[index]`: `$.calls[0].gasUsed`.
    pub path: String,
    /// The two values there, as JSON (long ones shortened), `absent` for
    /// a field one side lacks.
    pub a: String,
    pub b: String,
}

/// The first place, depth first in document order, where `a` and `b`
/// differ; `None` when they are equal.
pub fn json_difference(a: &Value, b: &Value) -> Option<JsonDifference> {
    fn walk(a: &Value, b: &Value, path: &mut String) -> Option<JsonDifference> {
        if a == b {
            return None;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                // Fields in `a`'s order, then those only `b` has.
                let keys = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k)));
                for k in keys {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    let d = match (x.get(k), y.get(k)) {
                        (Some(u), Some(v)) => walk(u, v, path),
                        (u, v) => Some(JsonDifference {
                            path: path.clone(),
                            a: u.map_or_else(|| "absent".into(), short),
                            b: v.map_or_else(|| "absent".into(), short),
                        }),
                    };
                    if d.is_some() {
                        return d;
                    }
                    path.truncate(len);
                }
                None
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (u, v)) in x.iter().zip(y).enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    if let Some(d) = walk(u, v, path) {
                        return Some(d);
                    }
                    path.truncate(len);
                }
                Some(JsonDifference {
                    path: format!("{path} (length)"),
                    a: x.len().to_string(),
                    b: y.len().to_string(),
                })
            }
            _ => Some(JsonDifference {
                path: path.clone(),
                a: short(a),
                b: short(b),
            }),
        }
    }
    walk(a, b, &mut "$".to_string())
}

/// A JSON value for a message: at most 120 characters.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}
