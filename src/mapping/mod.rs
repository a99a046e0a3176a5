//! Checking an integration's jq mapping before it reaches Port.
//!
//! A broken jq expression in a mapping is otherwise found only after Port has started a resync
//! and the integration's exporter fails on it, possibly after entities were deleted. Port's
//! integration framework (Ocean) compiles each expression with libjq 1.8.2 after two rewrites of
//! its own: single quotes that open or close a string become double quotes, and an `env` stub
//! is prepended. The check reproduces both rewrites, then compiles with jaq (pure Rust, no C
//! build). jaq accepts every expression of Port's own default mappings (see the corpus test).
//! Where jaq lacks a builtin that jq has (`IN`, `$__loc__`, ...), the expression is accepted,
//! not guessed at, and the check says so.

pub mod limits;
pub mod preview;
pub mod report;
pub mod worker;

use jaq_core::load::{self, Arena, File, Loader};
use serde::Serialize;
use serde_json::Value;

pub use limits::MappingLimits;

/// What Ocean prepends before compiling (env access is off by default).
const ENV_STUB: &str = "def env: {}; {} as $ENV | ";

/// Ocean's `_format_filter` regex, `(^|\s)'(?!\s|")|(?<!\s|")'(\s|$)`: a single quote that
/// opens or closes a string becomes a double one. Kept as the oracle of the scanner's test.
#[cfg(test)]
const OCEAN_QUOTE_REGEX: &str = r#"(^|\s)'(?!\s|")|(?<!\s|")'(\s|$)"#;

/// jq 1.8's builtins as `name/arity`, its formats (`@base32d`), and its special variables. When
/// jaq reports one of these as undefined, jaq lacks it and jq has it: the expression is accepted
/// unchecked rather than refused. Anything else jaq cannot resolve (a typo, a wrong arity) jq
/// rejects too.
const JQ_BUILTINS: &[&str] = &[
    "$__loc__",
    "$__prog_args",
    "$ENV",
    "@base32/0",
    "@base32d/0",
    "@base64/0",
    "@base64d/0",
    "@csv/0",
    "@html/0",
    "@json/0",
    "@sh/0",
    "@text/0",
    "@tsv/0",
    "@uri/0",
    "@urid/0",
    "IN/1",
    "IN/2",
    "INDEX/1",
    "INDEX/2",
    "abs/0",
    "add/0",
    "add/1",
    "all/0",
    "all/1",
    "all/2",
    "any/0",
    "any/1",
    "any/2",
    "arrays/0",
    "ascii/0",
    "ascii_downcase/0",
    "ascii_upcase/0",
    "booleans/0",
    "bsearch/1",
    "builtins/0",
    "capture/1",
    "capture/2",
    "ceil/0",
    "combinations/0",
    "combinations/1",
    "contains/1",
    "date/0",
    "dateadd/2",
    "datesub/2",
    "debug/0",
    "debug/1",
    "del/1",
    "delpaths/1",
    "drem/2",
    "empty/0",
    "endswith/1",
    "env/0",
    "error/0",
    "error/1",
    "exp/0",
    "exp10/0",
    "exp2/0",
    "explode/0",
    "fabs/0",
    "first/0",
    "first/1",
    "flatten/0",
    "flatten/1",
    "floor/0",
    "frexp/0",
    "from_entries/0",
    "fromdate/0",
    "fromdateiso8601/0",
    "fromjson/0",
    "fromstream/1",
    "gamma/0",
    "get_jq_origin/0",
    "get_prog_origin/0",
    "get_search_list/0",
    "getpath/1",
    "gmtime/0",
    "group_by/1",
    "gsub/2",
    "gsub/3",
    "halt/0",
    "halt_error/0",
    "halt_error/1",
    "has/1",
    "have_decnum/0",
    "have_literal_numbers/0",
    "implode/0",
    "in/1",
    "index/1",
    "indices/1",
    "infinite/0",
    "input/0",
    "input_filename/0",
    "input_line_number/0",
    "inputs/0",
    "inside/1",
    "isempty/1",
    "isinfinite/0",
    "isnan/0",
    "isnormal/0",
    "isvalid/1",
    "iterables/0",
    "join/1",
    "keys/0",
    "keys_unsorted/0",
    "last/0",
    "last/1",
    "ldexp/2",
    "leaf_paths/0",
    "length/0",
    "lgamma/0",
    "lgamma_r/0",
    "limit/2",
    "localtime/0",
    "log/0",
    "log10/0",
    "log2/0",
    "logb/0",
    "ltrimstr/1",
    "ltrim/0",
    "map/1",
    "map_values/1",
    "match/1",
    "match/2",
    "max/0",
    "max_by/1",
    "min/0",
    "min_by/1",
    "mktime/0",
    "modf/0",
    "nan/0",
    "nearbyint/0",
    "not/0",
    "now/0",
    "nth/1",
    "nth/2",
    "nulls/0",
    "numbers/0",
    "objects/0",
    "path/1",
    "paths/0",
    "paths/1",
    "pick/1",
    "pow/2",
    "pow10/0",
    "range/1",
    "range/2",
    "range/3",
    "recurse/0",
    "recurse/1",
    "recurse/2",
    "repeat/1",
    "reverse/0",
    "rindex/1",
    "round/0",
    "rtrim/0",
    "rtrimstr/1",
    "scalars/0",
    "scalb/2",
    "scalbln/2",
    "scan/1",
    "scan/2",
    "select/1",
    "setpath/2",
    "significand/0",
    "skip/2",
    "sort/0",
    "sort_by/1",
    "split/1",
    "split/2",
    "splits/1",
    "splits/2",
    "sqrt/0",
    "startswith/1",
    "stderr/0",
    "strflocaltime/1",
    "strftime/1",
    "strings/0",
    "strptime/1",
    "sub/2",
    "sub/3",
    "test/1",
    "test/2",
    "tgamma/0",
    "to_entries/0",
    "toarray/0",
    "todate/0",
    "todateiso8601/0",
    "tojson/0",
    "tonumber/0",
    "tostream/0",
    "tostring/0",
    "transpose/0",
    "trim/0",
    "trimstr/1",
    "trunc/0",
    "truncate_stream/1",
    "type/0",
    "unique/0",
    "unique_by/1",
    "until/2",
    "utf8bytelength/0",
    "values/0",
    "walk/1",
    "while/2",
    "with_entries/1",
    "getpath/1",
    "splits/1",
    "abs/0",
    "have_decnum/0",
    "ltrimstr/1",
    "tojson/0",
    "input/0",
    "significand/0",
    "getpath/1",
    "error/1",
    "input_line_number/0",
    "$__loc__",
];

/// Whether jq knows `name` (a filter of `arity` arguments, or a variable).
fn jq_has(name: &str, arity: Option<usize>) -> bool {
    let key = match arity {
        Some(a) => format!("{name}/{a}"),
        None if name.starts_with('$') => name.to_string(),
        None => format!("${name}"),
    };
    JQ_BUILTINS.contains(&key.as_str())
}

/// The outcome of checking one expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It compiles.
    Accepted,
    /// It uses a jq builtin jaq does not know; accepted without a full check.
    AcceptedUnchecked(String),
    /// jq would refuse it; the message says why.
    Refused(String),
}

/// Rewrites an expression as Ocean does before compiling it.
///
/// A linear scan with the same matches as Ocean's regex, leftmost first and without overlap
/// (the regex engine hit its backtracking limit on long quote-free input and panicked):
/// - a `'` at the start, or after whitespace, and not followed by whitespace or `"`, becomes `"`;
/// - otherwise a `'` not after whitespace or `"` and followed by whitespace or the end becomes
///   `"`; that whitespace belongs to the match, so it cannot open the next quote.
pub fn ocean_rewrite(expression: &str) -> String {
    let chars: Vec<char> = expression.chars().collect();
    let mut out = String::with_capacity(expression.len());
    let mut i = 0usize;
    while i < chars.len() {
        let c = chars[i];
        // First alternative, matched at `i`: start of input before a quote, or whitespace then
        // a quote, with no whitespace or `"` after the quote.
        let opens_at = |q: usize| {
            chars.get(q) == Some(&'\'')
                && !chars
                    .get(q + 1)
                    .is_some_and(|n| n.is_whitespace() || *n == '"')
        };
        if i == 0 && opens_at(0) {
            out.push('"');
            i += 1;
            continue;
        }
        if c.is_whitespace() && opens_at(i + 1) {
            out.push(c);
            out.push('"');
            i += 2;
            continue;
        }
        // Second alternative: a closing quote.
        if c == '\''
            && !(i > 0 && (chars[i - 1].is_whitespace() || chars[i - 1] == '"'))
            && chars.get(i + 1).is_none_or(|n| n.is_whitespace())
        {
            out.push('"');
            if let Some(&n) = chars.get(i + 1) {
                out.push(n);
            }
            i += 2;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Whether every expression compiles, tried in one program. Each expression sits in its own
/// definition, on its own lines (so a trailing `#` comment cannot swallow the rest).
fn all_compile(all: &[&str]) -> bool {
    if all.is_empty() {
        return true;
    }
    let mut program = String::new();
    for (k, expression) in all.iter().enumerate() {
        program.push_str(&format!(
            "def __expression_{k}: {ENV_STUB}(\n{}\n);\n",
            ocean_rewrite(expression)
        ));
    }
    program.push('.');
    // The batch is already rewritten; compile it as is.
    compile_code(&program, 0).is_ok()
}

/// A compiled jq filter, ready to run on JSON values.
type Compiled = jaq_core::compile::Filter<jaq_core::Native<jaq_core::data::JustLut<jaq_json::Val>>>;

/// Checks one jq expression the way Ocean compiles it. Call it on a thread with a
/// [`limits::JQ_STACK_BYTES`] stack, after [`MappingLimits::refuse_expression`]: jaq's parser
/// recurses once per nesting level.
pub fn check_expression(expression: &str) -> Verdict {
    match compile(expression) {
        Ok(_) => Verdict::Accepted,
        Err(verdict) => verdict,
    }
}

/// Runs one expression on `input` as Ocean does (after its rewrites), returning its first
/// output (`null` when it outputs nothing) or the error, as the exporter would meet it.
///
/// Evaluation has no time or memory bound of its own: only the preview worker process, which
/// runs under rlimits and is killed at its deadline, calls it on callers' expressions.
pub fn evaluate(expression: &str, input: &Value) -> Result<Value, String> {
    let filter = compile(expression).map_err(|v| match v {
        Verdict::Refused(m) | Verdict::AcceptedUnchecked(m) => m,
        Verdict::Accepted => String::new(),
    })?;
    let input = jaq_json::read::parse_single(input.to_string().as_bytes())
        .map_err(|e| format!("cannot read the item: {e}"))?;
    let ctx = jaq_core::Ctx::<jaq_core::data::JustLut<jaq_json::Val>>::new(
        &filter.lut,
        jaq_core::Vars::new([]),
    );
    // Not `jaq_core::unwrap_valr`: it exits the process on `halt`.
    let first = filter.id.run((ctx, input)).next();
    match first {
        None => Ok(Value::Null),
        Some(Ok(v)) => {
            serde_json::from_str(&v.to_string()).map_err(|e| format!("the output is not JSON: {e}"))
        }
        Some(Err(exn)) => Err(match exn.get_err() {
            Ok(e) => format!("jq error: {e}"),
            Err(exn) => match exn.get_halt() {
                Ok(code) => format!(
                    "the expression calls halt (exit code {code}); a mapping expression must produce a value"
                ),
                Err(_) => "jq error: the expression ended abnormally".to_string(),
            },
        }),
    }
}

/// Compiles an expression as Ocean does; the error is the verdict to report.
fn compile(expression: &str) -> Result<Compiled, Verdict> {
    let code = format!("{ENV_STUB}{}", ocean_rewrite(expression));
    compile_code(&code, ENV_STUB.len())
}

/// Compiles a jq program; `offset` is where the user's expression starts in it (for columns).
fn compile_code(code: &str, offset: usize) -> Result<Compiled, Verdict> {
    let column = |at: &str| -> usize {
        let start = code.as_ptr() as usize;
        let pos = (at.as_ptr() as usize).saturating_sub(start);
        pos.saturating_sub(offset) + 1
    };
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = match loader.load(&arena, File { code, path: () }) {
        Ok(m) => m,
        Err(errors) => {
            let mut parts = Vec::new();
            for (_, e) in errors {
                match e {
                    load::Error::Lex(es) => {
                        for (expect, at) in es {
                            parts.push(format!(
                                "expected {} at column {}",
                                expect.as_str(),
                                column(at)
                            ));
                        }
                    }
                    load::Error::Parse(es) => {
                        for (expect, at) in es {
                            let found = if at.is_empty() {
                                "end of input".to_string()
                            } else {
                                format!("`{}`", at.chars().take(20).collect::<String>())
                            };
                            parts.push(format!(
                                "expected {}, found {found} at column {}",
                                expect.as_str(),
                                column(at)
                            ));
                        }
                    }
                    load::Error::Io(es) => {
                        for (_, m) in es {
                            parts.push(m);
                        }
                    }
                }
            }
            return Err(Verdict::Refused(format!(
                "jq syntax error: {}",
                parts.join("; ")
            )));
        }
    };
    let funs = jaq_core::funs::<jaq_core::data::JustLut<jaq_json::Val>>()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    match jaq_core::Compiler::default()
        .with_funs(funs)
        .compile(modules)
    {
        Ok(filter) => Ok(filter),
        Err(errors) => {
            // (name as written, its arity for filters, what kind of symbol)
            let undefined: Vec<(String, Option<usize>, &'static str)> = errors
                .into_iter()
                .flat_map(|(_, es)| es)
                .map(|(name, kind)| {
                    let arity = match kind {
                        jaq_core::compile::Undefined::Filter(a) => Some(a),
                        _ => None,
                    };
                    (name.to_string(), arity, kind.as_str())
                })
                .collect();
            let shown = |(n, a, _): &(String, Option<usize>, &str)| match a {
                Some(a) => format!("{n}/{a}"),
                None => n.clone(),
            };
            if undefined.iter().all(|(n, a, _)| jq_has(n, *a)) {
                let names: Vec<String> = undefined.iter().map(shown).collect();
                return Err(Verdict::AcceptedUnchecked(format!(
                    "uses {} (a jq builtin the local checker does not know): accepted without a full check",
                    names.join(", ")
                )));
            }
            let described: Vec<String> = undefined
                .iter()
                .filter(|(n, a, _)| !jq_has(n, *a))
                .map(|u| format!("undefined {} `{}`", u.2, shown(u)))
                .collect();
            Err(Verdict::Refused(format!(
                "jq compile error: {}",
                described.join("; ")
            )))
        }
    }
}

/// One checked expression of a mapping config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Index of the resource in `resources`.
    pub resource: usize,
    /// The resource's `kind`.
    pub kind: String,
    /// Where the expression sits, e.g. `port.entity.mappings.properties.url`.
    pub field: String,
    /// The expression as written.
    pub expression: String,
    /// `refused` or `unchecked`.
    pub outcome: &'static str,
    /// Why.
    pub message: String,
}

/// Whether a resource is the legacy AWS exporter's (`AWS::...` kind, list-form `mappings`),
/// whose `blueprint` is static text, not jq: the exporter strips surrounding double quotes
/// and uses the rest as is (Port's docs: it "has to be a static string"). Ocean's own AWS
/// integrations use object-form mappings with a jq blueprint.
pub fn static_blueprint(resource: &Value) -> bool {
    resource["kind"]
        .as_str()
        .is_some_and(|k| k.starts_with("AWS::"))
        && resource["port"]["entity"]["mappings"].is_array()
}

/// Every jq expression of a config, with where it sits: `(resource, kind, field, expression)`.
/// The keys are those Ocean evaluates as jq; `file://` and `search://` values are not jq, nor
/// is the legacy AWS exporter's static blueprint.
pub fn expressions(config: &Value) -> Vec<(usize, String, String, String)> {
    let empty = Vec::new();
    let resources = config
        .get("resources")
        .and_then(Value::as_array)
        .or_else(|| config.as_array())
        .unwrap_or(&empty);
    let mut out = Vec::new();
    for (i, resource) in resources.iter().enumerate() {
        let kind = resource["kind"].as_str().unwrap_or("?").to_string();
        let static_blueprint = static_blueprint(resource);
        let mut push = |field: String, v: &Value| {
            if let Some(s) = v.as_str()
                && !s.starts_with("file://")
                && !s.starts_with("search://")
            {
                out.push((i, kind.clone(), field, s.to_string()));
            }
        };
        push("selector.query".into(), &resource["selector"]["query"]);
        push(
            "port.itemsToParse".into(),
            &resource["port"]["itemsToParse"],
        );
        let mappings = &resource["port"]["entity"]["mappings"];
        let list: Vec<(String, &Value)> = match mappings {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(j, m)| (format!("port.entity.mappings[{j}]"), m))
                .collect(),
            other => vec![("port.entity.mappings".to_string(), other)],
        };
        for (at, m) in list {
            for key in ["identifier", "title", "blueprint", "team", "icon"] {
                if key == "blueprint" && static_blueprint {
                    continue;
                }
                push(format!("{at}.{key}"), &m[key]);
            }
            for group in ["properties", "relations"] {
                if let Some(obj) = m[group].as_object() {
                    for (name, v) in obj {
                        push(format!("{at}.{group}.{name}"), v);
                    }
                }
            }
        }
    }
    out
}

/// Why a config cannot be checked at all (rather than an expression of it refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// More expressions than `--mapping-max-expressions`.
    #[error(
        "the mapping has {found} jq expressions; at most {limit} are checked in one mapping \
         (--mapping-max-expressions / PORT_MAPPING_MAX_EXPRESSIONS)"
    )]
    TooManyExpressions {
        /// How many the config has.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// No check slot came free, or the check did not finish, in time.
    #[error(
        "the mapping check did not finish within {secs} s (other checks may be running; at most \
         {concurrent} run at once): retry in a moment. Limits: --mapping-check-timeout-secs / \
         PORT_MAPPING_CHECK_TIMEOUT_SECS, --jq-max-concurrent / PORT_JQ_MAX_CONCURRENT"
    )]
    Busy {
        /// The time limit, in seconds.
        secs: u64,
        /// Checks allowed at once.
        concurrent: usize,
    },
    /// The checking thread could not be started or died.
    #[error("the mapping check could not run: {0}")]
    Internal(String),
}

/// The first characters of an expression, for a finding about one too long to echo whole.
fn shown_expression(expression: &str) -> String {
    const SHOWN: usize = 200;
    if expression.len() <= SHOWN {
        return expression.to_string();
    }
    let mut end = SHOWN;
    while !expression.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &expression[..end], expression.len())
}

/// After this many refused expressions a check stops: the mapping is refused either way.
pub const MAX_REFUSALS: usize = 20;

/// Refuses a mapping with more jq expressions than `--mapping-max-expressions` allows (the
/// update check and the preview both apply it before any jq work).
pub fn check_count(found: usize, limits: &MappingLimits) -> Result<(), CheckError> {
    if found > limits.max_expressions {
        return Err(CheckError::TooManyExpressions {
            found,
            limit: limits.max_expressions,
        });
    }
    Ok(())
}

/// Checks every expression of a config; returns what was refused or left unchecked.
///
/// CPU-bound and recursive: run it as [`check_config_async`] does, on a thread of its own with
/// a [`limits::JQ_STACK_BYTES`] stack, never on an async runtime's worker.
///
/// Expressions that break a length or depth limit are refused unparsed. The others are first
/// compiled together, each as its own definition: when that succeeds, every expression
/// compiles (one compilation, which loads jq's standard library once, instead of one per
/// expression). Otherwise the batch is halved until each failing part is small enough to
/// check expression by expression, so one bad expression among thousands costs a few dozen
/// compilations, not thousands; after [`MAX_REFUSALS`] refusals the check stops.
pub fn check_config(config: &Value, limits: &MappingLimits) -> Result<Vec<Finding>, CheckError> {
    let all = expressions(config);
    check_count(all.len(), limits)?;
    let mut findings: Vec<(usize, Finding)> = Vec::new();
    let mut parseable: Vec<usize> = Vec::new();
    for (k, (resource, kind, field, expression)) in all.iter().enumerate() {
        match limits.refuse_expression(expression) {
            Some(message) => findings.push((
                k,
                Finding {
                    resource: *resource,
                    kind: kind.clone(),
                    field: field.clone(),
                    expression: shown_expression(expression),
                    outcome: "refused",
                    message,
                },
            )),
            None => parseable.push(k),
        }
    }
    let mut pending = vec![parseable];
    while let Some(part) = pending.pop() {
        let refused = findings
            .iter()
            .filter(|(_, f)| f.outcome == "refused")
            .count();
        if refused >= MAX_REFUSALS {
            // The mapping is refused anyway; checking thousands more costs CPU and says little.
            let (resource, kind) = part
                .first()
                .and_then(|&k| all.get(k))
                .map(|(r, kind, _, _)| (*r, kind.clone()))
                .unwrap_or_default();
            findings.push((
                usize::MAX,
                Finding {
                    resource,
                    kind,
                    field: "(the rest)".into(),
                    expression: String::new(),
                    outcome: "refused",
                    message: format!(
                        "the check stopped after {MAX_REFUSALS} refused expressions; the others \
                         were not checked. Fix these and check again"
                    ),
                },
            ));
            break;
        }
        let texts: Vec<&str> = part.iter().map(|&k| all[k].3.as_str()).collect();
        if all_compile(&texts) {
            continue;
        }
        if part.len() > 8 {
            let (left, right) = part.split_at(part.len() / 2);
            pending.push(right.to_vec());
            pending.push(left.to_vec());
            continue;
        }
        for k in part {
            let (resource, kind, field, expression) = &all[k];
            let (outcome, message) = match check_expression(expression) {
                Verdict::Accepted => continue,
                Verdict::AcceptedUnchecked(m) => ("unchecked", m),
                Verdict::Refused(m) => ("refused", m),
            };
            findings.push((
                k,
                Finding {
                    resource: *resource,
                    kind: kind.clone(),
                    field: field.clone(),
                    expression: shown_expression(expression),
                    outcome,
                    message,
                },
            ));
        }
    }
    findings.sort_by_key(|(k, _)| *k);
    Ok(findings.into_iter().map(|(_, f)| f).collect())
}

/// Runs `work` on a fresh thread whose stack fits jaq's recursion, and waits for it without
/// blocking the async runtime.
pub async fn on_jq_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CheckError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("jq-check".into())
        .stack_size(limits::JQ_STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| CheckError::Internal(format!("cannot start a thread: {e}")))?;
    rx.await
        .map_err(|_| CheckError::Internal("the checking thread stopped".into()))
}

/// Bounds on concurrent jq work: the checks' and the previews' slots.
#[derive(Debug, Clone)]
pub struct JqSlots {
    /// Mapping checks (update calls).
    pub checks: std::sync::Arc<tokio::sync::Semaphore>,
    /// Previews (each one a worker process).
    pub previews: std::sync::Arc<tokio::sync::Semaphore>,
}

impl JqSlots {
    /// `n` slots of each kind (at least one).
    pub fn new(n: usize) -> Self {
        JqSlots {
            checks: std::sync::Arc::new(tokio::sync::Semaphore::new(n.max(1))),
            previews: std::sync::Arc::new(tokio::sync::Semaphore::new(n.max(1))),
        }
    }
}

/// [`check_config`] off the async runtime: on its own thread, after waiting for one of the
/// `--jq-max-concurrent` check slots, all within `--mapping-check-timeout-secs`.
pub async fn check_config_async(
    config: Value,
    limits: &MappingLimits,
    slots: &JqSlots,
) -> Result<Vec<Finding>, CheckError> {
    let busy = CheckError::Busy {
        secs: limits.check_timeout().as_secs(),
        concurrent: limits.max_concurrent.max(1),
    };
    let owned = limits.clone();
    let semaphore = slots.checks.clone();
    let run = async move {
        let permit = semaphore
            .acquire_owned()
            .await
            .map_err(|_| CheckError::Internal("the check slots are closed".into()))?;
        // The permit goes with the thread: a check abandoned at its deadline still holds its
        // slot until it really ends, so abandoned checks cannot pile up.
        on_jq_thread(move || {
            let _permit = permit;
            check_config(&config, &owned)
        })
        .await?
    };
    tokio::time::timeout(limits.check_timeout(), run)
        .await
        .unwrap_or(Err(busy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ocean_quote_rewrite() {
        assert_eq!(ocean_rewrite(".x // ''"), ".x // \"\"");
        assert_eq!(ocean_rewrite("'a' + .b"), "\"a\" + .b");
        assert_eq!(ocean_rewrite(".name"), ".name");
        assert_eq!(ocean_rewrite("\"it's\""), "\"it's\"");
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            check_expression(".name | ascii_downcase"),
            Verdict::Accepted
        );
        assert_eq!(
            check_expression(".fields.\"System.Description\" // ''"),
            Verdict::Accepted
        );
        assert_eq!(check_expression("env.HOME"), Verdict::Accepted);
        let Verdict::Refused(m) = check_expression(".items[] | select(.a ==") else {
            panic!("a syntax error must be refused")
        };
        assert!(m.starts_with("jq syntax error"), "{m}");
        let Verdict::Refused(m) = check_expression(".name | ascii_downcasee") else {
            panic!("an unknown function must be refused")
        };
        assert!(m.contains("undefined filter `ascii_downcasee/0`"), "{m}");
        // A known builtin with the wrong number of arguments is refused, as jq refuses it.
        let Verdict::Refused(m) = check_expression(".name | ascii_downcase(1)") else {
            panic!("a wrong arity must be refused")
        };
        assert!(m.contains("`ascii_downcase/1`"), "{m}");
        // jq builtins jaq lacks are accepted, unchecked, and said so.
        for expr in [".a | IN(1, 2)", "$__loc__", ".a | @base32d", ".a | @base32"] {
            match check_expression(expr) {
                Verdict::AcceptedUnchecked(m) => {
                    assert!(m.contains("accepted without a full check"), "{m}")
                }
                Verdict::Accepted => {}
                Verdict::Refused(m) => panic!("{expr} refused: {m}"),
            }
        }
    }

    #[test]
    fn finds_expressions_in_both_mapping_forms() {
        let config = json!({"resources": [
            {"kind": "repo", "selector": {"query": "true"}, "port": {"itemsToParse": ".items",
              "entity": {"mappings": {"identifier": ".id", "title": ".t", "blueprint": "\"b\"",
              "properties": {"readme": "file://README.md", "url": ".url"}}}}},
            {"kind": "pr", "selector": {"query": ".open"}, "port": {"entity": {"mappings": [
              {"identifier": ".id", "blueprint": "\"pr\"", "relations": {"repo": ".repo"}}]}}}
        ]});
        let fields: Vec<String> = expressions(&config).into_iter().map(|e| e.2).collect();
        assert_eq!(
            fields,
            [
                "selector.query",
                "port.itemsToParse",
                "port.entity.mappings.identifier",
                "port.entity.mappings.title",
                "port.entity.mappings.blueprint",
                "port.entity.mappings.properties.url",
                "selector.query",
                "port.entity.mappings[0].identifier",
                "port.entity.mappings[0].blueprint",
                "port.entity.mappings[0].relations.repo"
            ]
        );
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;
    use serde_json::json;

    /// Runs `f` on a thread with the stack the server gives jq work.
    fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(limits::JQ_STACK_BYTES)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    fn config_with(expression: &str) -> Value {
        json!({"resources": [{"kind": "k", "selector": {"query": expression},
            "port": {"entity": {"mappings": {"identifier": ".id", "blueprint": "\"b\""}}}}]})
    }

    /// The issue's examples of nesting that aborted the process are refused as too deep.
    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let hostile = vec![
            format!("{}.id{}", "(".repeat(1000), ")".repeat(1000)),
            format!("{}1{}", "[".repeat(1000), "]".repeat(1000)),
            format!("{}1{}", "{a:".repeat(1000), "}".repeat(1000)),
            format!("{}.{}", "if . then ".repeat(700), " end".repeat(700)),
            "-".repeat(3000),
            vec![".a"; 3000].join(" | "),
            vec!["1"; 3000].join(" + "),
            vec![".a"; 3000].join(" // "),
            format!("{}.{}", "reduce . as $x (.; ".repeat(500), ")".repeat(500)),
            format!("{}.", "def f: ".repeat(1000)),
            ".a".repeat(5000),
        ];
        for expr in hostile {
            let shown: String = expr.chars().take(30).collect();
            let findings =
                on_big_stack(move || check_config(&config_with(&expr), &MappingLimits::default()))
                    .unwrap();
            assert_eq!(findings.len(), 1, "{shown}");
            assert_eq!(findings[0].outcome, "refused");
            // The longest of them break the length limit first; both name their setting.
            let m = &findings[0].message;
            assert!(
                (m.contains("too deeply nested") && m.contains("PORT_MAPPING_MAX_DEPTH"))
                    || m.contains("PORT_MAPPING_MAX_EXPRESSION_BYTES"),
                "{shown}: {m}"
            );
        }
    }

    /// Right under the depth limit, jaq parses and compiles on the server's jq stack.
    #[test]
    fn nesting_at_the_limit_compiles() {
        let limits = MappingLimits::default();
        let d = limits.max_depth - 2;
        for expr in [
            format!("{}.id{}", "(".repeat(d), ")".repeat(d)),
            vec!["1"; d / 2].join(" + "),
            format!("{}1", "-".repeat(d - 1)),
        ] {
            assert!(limits.refuse_expression(&expr).is_none(), "{expr}");
            let findings =
                on_big_stack(move || check_config(&config_with(&expr), &MappingLimits::default()))
                    .unwrap();
            assert!(findings.is_empty(), "{findings:?}");
        }
    }

    /// A 400 KB expression without quotes panicked the quote rewrite (fancy_regex's backtrack
    /// limit); the scan is linear, and the length limit refuses it.
    #[test]
    fn a_long_quote_free_expression_is_refused_by_length() {
        let long = ".a + ".repeat(80_000) + ".a";
        assert_eq!(ocean_rewrite(&long).len(), long.len());
        let findings =
            on_big_stack(move || check_config(&config_with(&long), &MappingLimits::default()))
                .unwrap();
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0]
                .message
                .contains("PORT_MAPPING_MAX_EXPRESSION_BYTES"),
            "{}",
            findings[0].message
        );
        assert!(findings[0].expression.len() < 300, "not echoed whole");
    }

    /// The scan makes exactly the replacements Ocean's regex makes.
    #[test]
    fn quote_scan_matches_oceans_regex() {
        let re = fancy_regex::Regex::new(OCEAN_QUOTE_REGEX).unwrap();
        let alphabet = ['\'', '"', ' ', 'a', '\n', '.', '\t'];
        let mut seed = 12345u64;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 60) as usize + 1;
            let mut s = String::new();
            let mut x = seed;
            for _ in 0..len {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                s.push(alphabet[(x >> 59) as usize % alphabet.len()]);
            }
            let expected = re.replace_all(&s, "$1\"$2").into_owned();
            assert_eq!(ocean_rewrite(&s), expected, "{s:?}");
        }
    }

    #[test]
    fn too_many_expressions_is_one_clear_refusal() {
        let limits = MappingLimits {
            max_expressions: 10,
            ..MappingLimits::default()
        };
        let props: serde_json::Map<String, Value> =
            (0..20).map(|i| (format!("p{i}"), json!(".a"))).collect();
        let config = json!({"resources": [{"kind": "k", "selector": {"query": "true"},
            "port": {"entity": {"mappings": {"identifier": ".id", "blueprint": "\"b\"", "properties": props}}}}]});
        let e = check_config(&config, &limits).unwrap_err();
        assert!(
            e.to_string().contains("at most 10")
                && e.to_string().contains("PORT_MAPPING_MAX_EXPRESSIONS"),
            "{e}"
        );
    }

    /// One bad expression among many is found by halving, with the same finding as alone.
    #[test]
    fn bisection_finds_every_bad_expression() {
        let mut props = serde_json::Map::new();
        for i in 0..300 {
            let e = match i {
                17 => ".a | nope".to_string(),
                250 => ".b ==".to_string(),
                251 => "$__loc__".to_string(),
                _ => format!(".p{i} // \"\""),
            };
            props.insert(format!("p{i:03}"), json!(e));
        }
        let config = json!({"resources": [{"kind": "k", "selector": {"query": "true"},
            "port": {"entity": {"mappings": {"identifier": ".id", "blueprint": "\"b\"", "properties": props}}}}]});
        let findings =
            on_big_stack(move || check_config(&config, &MappingLimits::default())).unwrap();
        let got: Vec<(&str, &str)> = findings
            .iter()
            .map(|f| (f.field.as_str(), f.outcome))
            .collect();
        assert_eq!(
            got,
            [
                ("port.entity.mappings.properties.p017", "refused"),
                ("port.entity.mappings.properties.p250", "refused"),
                ("port.entity.mappings.properties.p251", "unchecked"),
            ]
        );
    }

    /// `halt` is the error of its expression, never the end of the process.
    #[test]
    fn halt_is_an_error_of_the_expression() {
        for expr in [
            "halt",
            "halt_error(0)",
            "halt_error",
            "\"x\" | halt_error(42)",
        ] {
            let e = evaluate(expr, &json!({})).unwrap_err();
            assert!(
                e.contains("halt") || e.starts_with("jq error"),
                "{expr}: {e}"
            );
        }
    }

    /// The legacy AWS exporter's list-form mappings take a static blueprint, not jq.
    #[test]
    fn legacy_aws_blueprint_is_static_text() {
        let legacy = json!({"resources": [{"kind": "AWS::S3::Bucket", "port": {"entity": {"mappings": [
            {"identifier": ".BucketName", "title": ".BucketName", "blueprint": "s3",
             "properties": {"arn": ".Arn"}}]}}}]});
        let fields: Vec<String> = expressions(&legacy).into_iter().map(|e| e.2).collect();
        assert_eq!(
            fields,
            [
                "port.entity.mappings[0].identifier",
                "port.entity.mappings[0].title",
                "port.entity.mappings[0].properties.arn"
            ]
        );
        assert!(
            check_config(&legacy, &MappingLimits::default())
                .unwrap()
                .is_empty()
        );
        // Ocean's AWS integration (object form) keeps a jq blueprint, and `s3` is no jq.
        let ocean = json!({"resources": [{"kind": "AWS::S3::Bucket", "selector": {"query": "true"},
            "port": {"entity": {"mappings": {"identifier": ".Identifier", "blueprint": "s3"}}}}]});
        let findings = check_config(&ocean, &MappingLimits::default()).unwrap();
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].message.contains("undefined filter `s3/0`"),
            "{findings:?}"
        );
        // Nor does a list-form mapping of another kind (the Kubernetes exporter's are jq).
        let k8s = json!({"resources": [{"kind": "apps/v1/deployments", "selector": {"query": "true"},
            "port": {"entity": {"mappings": [{"identifier": ".metadata.name", "blueprint": "s3"}]}}}]});
        assert_eq!(
            check_config(&k8s, &MappingLimits::default()).unwrap().len(),
            1
        );
    }
}
