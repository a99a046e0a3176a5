//! `check-mapping FILE...`: the offline check, for CI pipelines and editors.

use std::io::Write;

use serde_json::{Value, json};

use super::{Finding, JqSlots, MappingLimits, check_config_async, expressions, limits::yaml_depth};
use crate::{
    RunError,
    config::{CheckMappingArgs, ReportFormat},
};

/// Reads one mapping file within the limits: its size before reading it, its nesting before
/// the YAML parser sees it (a 100k-deep list took the parser tens of seconds).
fn read_config(path: &std::path::Path, limits: &MappingLimits) -> Result<Value, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > limits.max_file_bytes {
        return Err(format!(
            "the file is {size} bytes; at most {} are read (--mapping-max-file-bytes / \
             PORT_MAPPING_MAX_FILE_BYTES)",
            limits.max_file_bytes
        ));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|e| e.to_string())?,
            limits.max_file_bytes.saturating_add(1),
        ),
        &mut text,
    )
    .map_err(|e| e.to_string())?;
    if text.len() as u64 > limits.max_file_bytes {
        return Err(format!(
            "the file is larger than {} bytes (--mapping-max-file-bytes / PORT_MAPPING_MAX_FILE_BYTES)",
            limits.max_file_bytes
        ));
    }
    let depth = yaml_depth(&text);
    if depth > limits.max_depth {
        return Err(format!(
            "the document is too deeply nested (about {depth} levels; at most {} are read: \
             --mapping-max-depth / PORT_MAPPING_MAX_DEPTH)",
            limits.max_depth
        ));
    }
    // YAML is a superset of JSON, so one parser reads both.
    yaml_serde::from_str(&text).map_err(|e| e.to_string())
}

/// Checks every file, prints the findings, and fails when anything is refused.
pub async fn check_files(args: &CheckMappingArgs, limits: &MappingLimits) -> Result<(), RunError> {
    let slots = JqSlots::new(1);
    let mut all: Vec<(String, usize, Vec<Finding>)> = Vec::new();
    for path in &args.files {
        let shown = path.display().to_string();
        let refuse = |reason: String| RunError::MappingFile {
            path: shown.clone(),
            reason,
        };
        let (owned_path, owned_limits) = (path.clone(), limits.clone());
        // Parsing a large YAML file is CPU work too: off the runtime, on a big stack.
        let config = super::on_jq_thread(move || read_config(&owned_path, &owned_limits))
            .await
            .map_err(|e| refuse(e.to_string()))?
            .map_err(refuse)?;
        let checked = expressions(&config).len();
        let findings = check_config_async(config, limits, &slots)
            .await
            .map_err(|e| refuse(e.to_string()))?;
        all.push((shown, checked, findings));
    }
    let refused: usize = all
        .iter()
        .map(|(_, _, f)| f.iter().filter(|f| f.outcome == "refused").count())
        .sum();
    let mut out = std::io::stdout().lock();
    match args.format {
        ReportFormat::Text => {
            for (file, _, findings) in &all {
                for f in findings {
                    let _ = writeln!(
                        out,
                        "{file}: resources[{}] ({}) {}: {}: {}",
                        f.resource, f.kind, f.field, f.outcome, f.message
                    );
                }
            }
            let checked: usize = all.iter().map(|(_, n, _)| n).sum();
            let _ = writeln!(
                out,
                "{checked} jq expressions checked in {} file(s): {refused} refused",
                all.len()
            );
        }
        ReportFormat::Json => {
            let files: Vec<Value> = all
                .iter()
                .map(|(file, checked, findings)| {
                    json!({"file": file, "expressions": checked, "findings": findings})
                })
                .collect();
            let _ = writeln!(out, "{}", json!({"refused": refused, "files": files}));
        }
    }
    if refused > 0 {
        return Err(RunError::MappingRefused(refused));
    }
    Ok(())
}
