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

pub mod preview;
pub mod report;

use std::sync::LazyLock;

use fancy_regex::Regex;
use jaq_core::load::{self, Arena, File, Loader};
use serde::Serialize;
use serde_json::Value;

/// What Ocean prepends before compiling (env access is off by default).
const ENV_STUB: &str = "def env: {}; {} as $ENV | ";

/// Ocean's `_format_filter`: a single quote that opens or closes a string becomes a double one.
static QUOTES: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"(^|\s)'(?!\s|")|(?<!\s|")'(\s|$)"#).ok());

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
pub fn ocean_rewrite(expression: &str) -> String {
    match QUOTES.as_ref() {
        Some(re) => re.replace_all(expression, "$1\"$2").into_owned(),
        None => expression.to_string(),
    }
}

/// Whether every expression compiles, tried in one program. Each expression sits in its own
/// definition, on its own lines (so a trailing `#` comment cannot swallow the rest).
fn all_compile(all: &[(usize, String, String, String)]) -> bool {
    if all.is_empty() {
        return true;
    }
    let mut program = String::new();
    for (k, (_, _, _, expression)) in all.iter().enumerate() {
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

/// Checks one jq expression the way Ocean compiles it.
pub fn check_expression(expression: &str) -> Verdict {
    match compile(expression) {
        Ok(_) => Verdict::Accepted,
        Err(verdict) => verdict,
    }
}

/// Runs one expression on `input` as Ocean does (after its rewrites), returning its first
/// output (`null` when it outputs nothing) or the error, as the exporter would meet it.
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
    let first = filter
        .id
        .run((ctx, input))
        .map(jaq_core::unwrap_valr)
        .next();
    match first {
        None => Ok(Value::Null),
        Some(Ok(v)) => {
            serde_json::from_str(&v.to_string()).map_err(|e| format!("the output is not JSON: {e}"))
        }
        Some(Err(e)) => Err(format!("jq error: {e}")),
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

/// Every jq expression of a config, with where it sits: `(resource, kind, field, expression)`.
/// The keys are those Ocean evaluates as jq; `file://` and `search://` values are not jq.
pub fn expressions(config: &Value) -> Vec<(usize, String, String, String)> {
    let resources = config
        .get("resources")
        .and_then(Value::as_array)
        .or_else(|| config.as_array())
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, resource) in resources.iter().enumerate() {
        let kind = resource["kind"].as_str().unwrap_or("?").to_string();
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

/// Checks every expression of a config; returns what was refused or left unchecked.
///
/// Compiling jq means loading the whole standard library each time, so a config's
/// expressions are first compiled together, each as its own definition: when that succeeds,
/// every expression compiles (one compilation instead of one per expression). Otherwise
/// each is checked alone, so every finding names its own expression.
pub fn check_config(config: &Value) -> Vec<Finding> {
    let all = expressions(config);
    if all_compile(&all) {
        return Vec::new();
    }
    all.into_iter()
        .filter_map(|(resource, kind, field, expression)| {
            let (outcome, message) = match check_expression(&expression) {
                Verdict::Accepted => return None,
                Verdict::AcceptedUnchecked(m) => ("unchecked", m),
                Verdict::Refused(m) => ("refused", m),
            };
            Some(Finding {
                resource,
                kind,
                field,
                expression,
                outcome,
                message,
            })
        })
        .collect()
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
