//! `check-mapping FILE...`: the offline check, for CI pipelines and editors.

use std::io::Write;

use serde_json::{Value, json};

use super::{Finding, check_config, expressions};
use crate::{
    RunError,
    config::{CheckMappingArgs, ReportFormat},
};

/// Checks every file, prints the findings, and fails when anything is refused.
pub fn check_files(args: &CheckMappingArgs) -> Result<(), RunError> {
    let mut all: Vec<(String, usize, Vec<Finding>)> = Vec::new();
    for path in &args.files {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RunError::MappingFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        // YAML is a superset of JSON, so one parser reads both.
        let config: Value = yaml_serde::from_str(&text).map_err(|e| RunError::MappingFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let checked = expressions(&config).len();
        all.push((shown, checked, check_config(&config)));
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
