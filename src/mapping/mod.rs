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

/// jq builtins (and special variables) that jaq does not define: an expression using one is
/// accepted unchecked rather than refused, since jq would accept it.
const JQ_ONLY: &[&str] = &[
    "IN",
    "INDEX",
    "ascii",
    "get_search_list",
    "get_prog_origin",
    "get_jq_origin",
    "input_line_number",
    "input_filename",
    "$__loc__",
    "$__prog_args",
    "splits",
    "getpath",
    "ltrimstr",
    "rtrimstr",
    "trimstr",
    "significand",
    "gamma",
    "lgamma",
    "tgamma",
    "lgamma_r",
    "frexp",
    "modf",
    "ldexp",
    "scalb",
    "scalbln",
    "nearbyint",
    "logb",
    "drem",
    "pow10",
    "have_decnum",
    "have_literal_numbers",
    "toarray",
    "pick",
    "getpath",
    "tojson",
    "fromjson",
    "halt",
    "halt_error",
    "input",
    "inputs",
    "debug",
    "stderr",
    "strflocaltime",
    "localtime",
    "dateadd",
    "datesub",
    "date",
    "todateiso8601",
    "fromdateiso8601",
    "dateadd",
    "tostream",
    "fromstream",
    "truncate_stream",
    "leaf_paths",
    "combinations",
    "walk",
    "env",
    "$ENV",
    "builtins",
    "splits",
    "utf8bytelength",
    "implode",
    "explode",
    "getpath",
    "paths",
    "limit",
    "until",
    "abs",
    "trim",
    "ltrim",
    "rtrim",
    "have_decnum",
    "@base32d",
    "ltrimstr",
    "map_values",
    "add",
    "skip",
    "isvalid",
    "error",
    "infinite",
    "nan",
    "isinfinite",
    "isnan",
    "isnormal",
    "min_by",
    "max_by",
    "unique_by",
    "group_by",
    "transpose",
    "in",
    "inside",
    "indices",
    "index",
    "rindex",
    "scan",
    "capture",
    "match",
    "test",
    "sub",
    "gsub",
    "ascii_downcase",
    "ascii_upcase",
    "@text",
    "@json",
    "@html",
    "@uri",
    "@csv",
    "@tsv",
    "@sh",
    "@base64",
    "@base64d",
    "@base32",
    "getpath",
    "delpaths",
    "setpath",
    "to_entries",
    "from_entries",
    "with_entries",
    "recurse",
    "env",
    "now",
    "mktime",
    "gmtime",
    "strptime",
    "strftime",
    "todate",
    "fromdate",
    "first",
    "last",
    "nth",
    "range",
    "floor",
    "sqrt",
    "pow",
    "log",
    "exp",
    "log10",
    "log2",
    "exp10",
    "exp2",
    "round",
    "ceil",
    "trunc",
    "fabs",
    "tostring",
    "tonumber",
    "type",
    "not",
    "path",
    "del",
    "keys",
    "keys_unsorted",
    "has",
    "contains",
    "length",
    "join",
    "split",
    "any",
    "all",
    "flatten",
    "repeat",
    "while",
    "reverse",
    "sort",
    "sort_by",
    "unique",
    "min",
    "max",
    "select",
    "empty",
    "map",
    "objects",
    "arrays",
    "strings",
    "numbers",
    "booleans",
    "nulls",
    "iterables",
    "scalars",
    "values",
    "startswith",
    "endswith",
    "ascii",
    "tojson",
    "splits",
    "getpath",
    "error",
    "abs",
];

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
    let rewritten = ocean_rewrite(expression);
    let code = format!("{ENV_STUB}{rewritten}");
    let offset = ENV_STUB.len();
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
    let modules = match loader.load(
        &arena,
        File {
            code: code.as_str(),
            path: (),
        },
    ) {
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
            let undefined: Vec<(String, &'static str)> = errors
                .into_iter()
                .flat_map(|(_, es)| es)
                .map(|(name, kind)| (name.to_string(), kind.as_str()))
                .collect();
            if undefined
                .iter()
                .all(|(name, _)| JQ_ONLY.contains(&name.as_str()))
            {
                let names: Vec<&str> = undefined.iter().map(|(n, _)| n.as_str()).collect();
                return Err(Verdict::AcceptedUnchecked(format!(
                    "uses {} (a jq builtin the local checker does not know): accepted without a full check",
                    names.join(", ")
                )));
            }
            let described: Vec<String> = undefined
                .iter()
                .filter(|(n, _)| !JQ_ONLY.contains(&n.as_str()))
                .map(|(n, kind)| format!("undefined {kind} `{n}`"))
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
pub fn check_config(config: &Value) -> Vec<Finding> {
    expressions(config)
        .into_iter()
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
        assert!(m.contains("undefined filter `ascii_downcasee`"), "{m}");
        assert!(matches!(
            check_expression(".a | IN(1, 2)"),
            Verdict::AcceptedUnchecked(_) | Verdict::Accepted
        ));
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
