//! Port's default mapping per Ocean integration type, embedded in the binary.
//!
//! The texts are the `port-app-config.yml` files Port ships with each Ocean integration, copied
//! byte for byte from port-labs/ocean into `assets/mapping-corpus/ocean/` (provenance in
//! `assets/mapping-corpus/SOURCES.tsv`); build.rs turns the folder into [`DEFAULT_MAPPINGS`].
//! Nothing here reads a file or calls Port at run time.

use std::collections::BTreeSet;

include!(concat!(env!("OUT_DIR"), "/default_mappings.rs"));

/// Suffix Port gives some Ocean integrations' `installationAppType` (`github-ocean`): the
/// mapping is the one of the type without it.
pub const OCEAN_SUFFIX: &str = "-ocean";

/// How many close matches an unknown type's error lists.
const MAX_SUGGESTIONS: usize = 5;

/// The default mapping of `integration_type`, as `(canonical type, YAML)`: an exact type from
/// the corpus, or `<type>-ocean` for one.
pub fn lookup(integration_type: &str) -> Option<(&'static str, &'static str)> {
    let exact = |name: &str| {
        DEFAULT_MAPPINGS
            .binary_search_by(|(t, _)| (*t).cmp(name))
            .ok()
            .and_then(|i| DEFAULT_MAPPINGS.get(i).copied())
    };
    exact(integration_type).or_else(|| {
        integration_type
            .strip_suffix(OCEAN_SUFFIX)
            .filter(|base| !base.is_empty())
            .and_then(exact)
    })
}

/// Every type in the corpus, sorted.
pub fn types() -> impl Iterator<Item = &'static str> {
    DEFAULT_MAPPINGS.iter().map(|(t, _)| *t)
}

/// The types closest to an unknown one, best first: those sharing its first word
/// (`jira-cloud` → `jira`, `jira-server`), starting with it, or a few edits away from it.
pub fn close_matches(unknown: &str) -> Vec<&'static str> {
    let unknown = unknown.strip_suffix(OCEAN_SUFFIX).unwrap_or(unknown);
    let lower = unknown.to_ascii_lowercase();
    let word = lower.split('-').next().unwrap_or_default();
    let mut scored: Vec<(usize, &'static str)> = types()
        .filter_map(|t| {
            let distance = edit_distance(&lower, t);
            let related = (!word.is_empty() && t.split('-').next() == Some(word))
                || (!lower.is_empty() && t.starts_with(&lower))
                || distance <= 2;
            related.then_some((distance, t))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, t)| t)
        .collect()
}

/// Levenshtein distance over bytes. Callers bound the input length (`MAX_ARGUMENT_BYTES`) and
/// the corpus names are short, so this stays small.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Every kind that some default mapping has a resource for (`repository`, `issue`, ...),
/// sorted: the completion of a prompt's `kind`.
pub fn kinds() -> &'static BTreeSet<String> {
    static KINDS: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    KINDS.get_or_init(|| {
        DEFAULT_MAPPINGS
            .iter()
            .filter_map(|(_, text)| yaml_serde::from_str::<serde_json::Value>(text).ok())
            .flat_map(|config| {
                config["resources"]
                    .as_array()
                    .map(|resources| {
                        resources
                            .iter()
                            .filter_map(|r| r["kind"].as_str().map(str::to_string))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_complete() {
        assert!(DEFAULT_MAPPINGS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(DEFAULT_MAPPINGS.len(), 49);
    }

    #[test]
    fn aliases_and_close_matches() {
        assert_eq!(lookup("github-ocean").map(|(t, _)| t), Some("github"));
        assert_eq!(lookup("gitlab-v2").map(|(t, _)| t), Some("gitlab-v2"));
        assert_eq!(lookup("-ocean"), None);
        assert_eq!(lookup("Github"), None);
        assert_eq!(close_matches("jira-cloud"), ["jira", "jira-server"]);
        assert_eq!(close_matches("githb"), ["github", "gitlab"]);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn kinds_come_from_every_file() {
        let kinds = kinds();
        for kind in ["repository", "issue", "project", "pull-request"] {
            assert!(kinds.contains(kind), "{kind}");
        }
    }
}
