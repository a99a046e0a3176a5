//! Bounds on the jq work one call may ask for, and the cheap scans that enforce them before any
//! parser runs.
//!
//! jq expressions come from callers: an attacker or a confused model. jaq's parser, compiler and
//! evaluator recurse once per nesting level and have no depth limit, so a 2 KB expression could
//! overflow the stack and abort the whole server; tens of thousands of expressions could keep a
//! core busy for a minute. Every limit here is checked by a linear scan that cannot recurse, and
//! each refusal names the limit and the setting that changes it.

use std::{path::PathBuf, time::Duration};

use clap::Args;

/// The limits on mapping checks, previews and `check-mapping`, from flags or the environment.
#[derive(Debug, Clone, Args)]
pub struct MappingLimits {
    /// Most jq expressions checked in one mapping (one update call, or one `check-mapping` file).
    /// Port's largest default mapping has a few hundred.
    #[arg(
        long = "mapping-max-expressions",
        env = "PORT_MAPPING_MAX_EXPRESSIONS",
        default_value_t = 5000,
        global = true
    )]
    pub max_expressions: usize,

    /// Longest jq expression accepted, in bytes. Port's default mappings stay under 1 KB.
    #[arg(
        long = "mapping-max-expression-bytes",
        env = "PORT_MAPPING_MAX_EXPRESSION_BYTES",
        default_value_t = 16 * 1024,
        global = true
    )]
    pub max_expression_bytes: usize,

    /// Deepest nesting accepted in a jq expression (brackets, `if`, `def`, `reduce`, operator
    /// chains, unary minus) and in a `check-mapping` YAML file. jq's parser recurses once per
    /// level; Port's default mappings stay under 20.
    #[arg(
        long = "mapping-max-depth",
        env = "PORT_MAPPING_MAX_DEPTH",
        default_value_t = 128,
        global = true
    )]
    pub max_depth: usize,

    /// Longest a mapping check may take, in seconds, waiting for a free slot included.
    #[arg(
        long = "mapping-check-timeout-secs",
        env = "PORT_MAPPING_CHECK_TIMEOUT_SECS",
        default_value_t = 20,
        global = true
    )]
    pub check_timeout_secs: u64,

    /// Largest file `check-mapping` reads, in bytes.
    #[arg(
        long = "mapping-max-file-bytes",
        env = "PORT_MAPPING_MAX_FILE_BYTES",
        default_value_t = 4 * 1024 * 1024,
        global = true
    )]
    pub max_file_bytes: u64,

    /// jq jobs that may run at once, per kind (mapping checks; previews). Others wait for a
    /// slot (a check within its time limit, a preview up to half of its own), then get a
    /// "busy" error: jq work cannot starve the machine.
    #[arg(
        long = "jq-max-concurrent",
        env = "PORT_JQ_MAX_CONCURRENT",
        default_value_t = 2,
        global = true
    )]
    pub max_concurrent: usize,

    /// Longest one preview-integration-mapping call may run, in seconds; then its worker process
    /// is killed (an expression such as `until(false; .)` never ends).
    #[arg(
        long = "preview-timeout-secs",
        env = "PORT_PREVIEW_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub preview_timeout_secs: u64,

    /// Address space of one preview's worker process, in MiB (`[range(1e8)]` would take 1.5 GB).
    #[arg(
        long = "preview-max-memory-mb",
        env = "PORT_PREVIEW_MAX_MEMORY_MB",
        default_value_t = 1024,
        global = true
    )]
    pub preview_max_memory_mb: u64,

    /// Largest preview result, in bytes (it is returned to the model in full).
    #[arg(
        long = "preview-max-output-bytes",
        env = "PORT_PREVIEW_MAX_OUTPUT_BYTES",
        default_value_t = 4 * 1024 * 1024,
        global = true
    )]
    pub preview_max_output_bytes: usize,

    /// The executable that runs previews (`<it> __jq-worker`); default: this server's own binary.
    #[arg(
        long = "preview-worker",
        env = "PORT_PREVIEW_WORKER",
        hide = true,
        global = true
    )]
    pub preview_worker: Option<PathBuf>,
}

impl Default for MappingLimits {
    /// What the command line gives with no flags.
    fn default() -> Self {
        MappingLimits {
            max_expressions: 5000,
            max_expression_bytes: 16 * 1024,
            max_depth: 128,
            check_timeout_secs: 20,
            max_file_bytes: 4 * 1024 * 1024,
            max_concurrent: 2,
            preview_timeout_secs: 10,
            preview_max_memory_mb: 1024,
            preview_max_output_bytes: 4 * 1024 * 1024,
            preview_worker: None,
        }
    }
}

impl MappingLimits {
    /// The mapping check's time limit (at least one second).
    pub fn check_timeout(&self) -> Duration {
        Duration::from_secs(self.check_timeout_secs.max(1))
    }

    /// The preview's time limit (at least one second).
    pub fn preview_timeout(&self) -> Duration {
        Duration::from_secs(self.preview_timeout_secs.max(1))
    }

    /// Why one expression is refused before parsing, if it breaks a limit.
    pub fn refuse_expression(&self, expression: &str) -> Option<String> {
        if expression.len() > self.max_expression_bytes {
            return Some(format!(
                "the expression is {} bytes long; at most {} are accepted \
                 (--mapping-max-expression-bytes / PORT_MAPPING_MAX_EXPRESSION_BYTES)",
                expression.len(),
                self.max_expression_bytes
            ));
        }
        let depth = nesting_depth(expression);
        if depth > self.max_depth {
            return Some(format!(
                "the expression is too deeply nested (depth {depth} counting brackets, if/def/reduce, \
                 operator chains and unary minus; at most {} is accepted: --mapping-max-depth / \
                 PORT_MAPPING_MAX_DEPTH)",
                self.max_depth
            ));
        }
        None
    }
}

/// The stack of the threads that parse and compile jq. The length and depth limits keep the
/// parser's recursion far below it; the margin covers settings raised well above the defaults.
pub const JQ_STACK_BYTES: usize = 256 * 1024 * 1024;

/// An upper estimate of how deep jaq recurses on `expression`, from a scan that does not recurse.
///
/// Each bracket, string interpolation and block keyword (`if`, `def`, `reduce`, `foreach`, `try`,
/// `label`) opens a level; within a level every binary operator, unary minus and path step
/// (`.a.b`) adds one (jaq builds chains as nested terms, and walks them recursively).
pub fn nesting_depth(expression: &str) -> usize {
    // One frame per open bracket: operators counted at that level so far.
    let mut frames: Vec<usize> = vec![0];
    // What each open bracket closes with; `"` marks an interpolation's string.
    let mut closers: Vec<u8> = Vec::new();
    let mut max = 0usize;
    let bytes = expression.as_bytes();
    let mut depth = |frames: &Vec<usize>| -> usize {
        let d = frames.len().saturating_add(frames.iter().sum::<usize>());
        max = max.max(d);
        d
    };
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            match c {
                b'\\' if bytes.get(i + 1) == Some(&b'(') => {
                    // `\(`: code inside the string, until its `)`.
                    in_string = false;
                    closers.push(b'"');
                    frames.push(0);
                    depth(&frames);
                    i += 2;
                    continue;
                }
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'#' => {
                // A comment runs to the end of the line.
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                closers.push(match c {
                    b'(' => b')',
                    b'[' => b']',
                    _ => b'}',
                });
                frames.push(0);
                depth(&frames);
            }
            b')' | b']' | b'}' => {
                let interpolation = c == b')' && closers.last() == Some(&b'"');
                if closers.pop().is_some() && frames.len() > 1 {
                    frames.pop();
                }
                // The `)` of an interpolation resumes its string.
                in_string = interpolation;
            }
            b'|' | b'+' | b'-' | b'*' | b'/' | b'%' | b'=' | b'<' | b'>' | b',' | b'?' | b'!'
            | b';' | b'.' => {
                if let Some(top) = frames.last_mut() {
                    *top = top.saturating_add(1);
                }
                depth(&frames);
                // `//`, `|=`, `==`, `..` ... count once.
                while i + 1 < bytes.len() && matches!(bytes[i + 1], b'/' | b'=' | b'|' | b'.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &expression[start..i];
                match word {
                    "if" | "def" | "reduce" | "foreach" | "try" | "label" | "and" | "or"
                    | "then" | "elif" | "else" | "as" => {
                        if let Some(top) = frames.last_mut() {
                            *top = top.saturating_add(1);
                        }
                        depth(&frames);
                    }
                    _ => {}
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    max
}

/// An upper estimate of a YAML (or JSON) document's nesting, by a linear scan, so a 100k-deep
/// file is refused before the YAML parser spends tens of seconds on it.
///
/// Block nesting is counted from indentation (each deeper indent opens a level, as YAML reads it)
/// plus compact `- - -` sequences; flow nesting from `[` and `{` outside quotes.
pub fn yaml_depth(text: &str) -> usize {
    let mut indents: Vec<usize> = Vec::new();
    let mut max = 0usize;
    let mut flow = 0usize;
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let rest = &line[indent..];
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        while indents.last().is_some_and(|&top| top >= indent) {
            indents.pop();
        }
        indents.push(indent);
        let mut dashes = 0usize;
        let mut r = rest;
        while let Some(after) = r.strip_prefix("- ").or_else(|| r.strip_prefix("? ")) {
            dashes += 1;
            r = after.trim_start_matches(' ');
        }
        let mut quote: Option<char> = None;
        let mut line_flow_max = flow;
        for ch in r.chars() {
            match (quote, ch) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(ch),
                (None, '#') => break,
                (None, '[' | '{') => {
                    flow = flow.saturating_add(1);
                    line_flow_max = line_flow_max.max(flow);
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        max = max.max(
            indents
                .len()
                .saturating_add(dashes)
                .saturating_add(line_flow_max),
        );
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_of_ordinary_and_hostile_expressions() {
        assert!(nesting_depth(".name") <= 2);
        assert!(nesting_depth(".a | select(.b == \"x\") | .c // \"\"") < 10);
        let parens = format!("{}.id{}", "(".repeat(1000), ")".repeat(1000));
        assert!(nesting_depth(&parens) > 1000);
        assert!(nesting_depth(&"-".repeat(3000)) >= 3000);
        assert!(nesting_depth(&vec![".a"; 3000].join(" | ")) >= 2999);
        assert!(nesting_depth(&vec![".a"; 3000].join(" // ")) >= 2999);
        assert!(
            nesting_depth(&format!(
                "{}.{}",
                "if . then ".repeat(500),
                " end".repeat(500)
            )) > 1000
        );
        // Strings do not count, interpolations do.
        assert!(nesting_depth("\"((((((((((((((((((\"") <= 2);
        assert!(nesting_depth("\"a \\(.b | .c) d\" | .e") <= 5);
        // A comment does not count either.
        assert!(nesting_depth(".a # ((((((((((((((((((((((((((((((\n") <= 2);
    }

    #[test]
    fn yaml_depth_counts_blocks_flows_and_compact_lists() {
        assert!(yaml_depth("a: 1\nb:\n  c: 2\n") <= 3);
        assert!(yaml_depth(&"- ".repeat(1000)) >= 1000);
        assert!(yaml_depth(&format!("x: {}1{}", "[".repeat(500), "]".repeat(500))) >= 500);
        let indented: String = (0..300)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert!(yaml_depth(&indented) >= 300);
        assert!(yaml_depth("q: \"[[[[[[[[[[\"\n") <= 2);
    }
}
