//! The sandbox organization's starting data: four integrations in the shapes Port's own
//! clients read (see `port-api-notes.md`, section 2), each with its resync history, raw-data
//! examples per kind and event logs.
//!
//! The story the demo tells: `jira-cloud`'s last resync failed because someone changed its
//! `issue` mapping's identifier from `.key` to `.fields.key` (Jira's raw issue has the key at
//! `.key`), so every issue failed while projects loaded; its earlier run, with `.key`, completed.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::sync::{COMPLETED, Counts, FAILED, Outcome, Run, SYNCING, SyncData};

/// jira-cloud's `issue` identifier before and after the breaking edit.
const JIRA_GOOD_IDENTIFIER: &str = ".key";
const JIRA_BROKEN_IDENTIFIER: &str = ".fields.key";

fn jira_config(issue_identifier: &str) -> Value {
    json!({
        "deleteDependentEntities": true,
        "createMissingRelatedEntities": true,
        "enableMergeEntity": true,
        "resources": [
            {
                "kind": "project",
                "selector": {"query": "true"},
                "port": {"entity": {"mappings": {
                    "identifier": ".key",
                    "title": ".name",
                    "blueprint": "\"jiraProject\"",
                    "properties": {
                        "url": "(.self | split(\"/\") | .[:3] | join(\"/\")) + \"/projects/\" + .key",
                        "projectType": ".projectTypeKey"
                    }
                }}}
            },
            {
                "kind": "issue",
                "selector": {"query": "true", "jql": "statusCategory != Done"},
                "port": {"entity": {"mappings": {
                    "identifier": issue_identifier,
                    "title": ".fields.summary",
                    "blueprint": "\"jiraIssue\"",
                    "properties": {
                        "status": ".fields.status.name",
                        "issueType": ".fields.issuetype.name",
                        "priority": ".fields.priority.name",
                        "assignee": ".fields.assignee.emailAddress",
                        "created": ".fields.created",
                        "updated": ".fields.updated"
                    },
                    "relations": {"project": ".fields.project.key"}
                }}}
            }
        ]
    })
}

/// Integrations the sandbox starts with.
pub fn integrations() -> Vec<Value> {
    vec![
        json!({
            "_id": "integration_5f1c2a9e",
            "_orgId": "org_sandbox",
            "identifier": "github-ocean",
            "installationId": "github-ocean",
            "title": "GitHub",
            "installationAppType": "github-ocean",
            "integrationType": "github-ocean",
            "installationType": "OnPrem",
            "version": "3.4.1",
            "actionsProcessingEnabled": true,
            "config": {
                "deleteDependentEntities": true,
                "createMissingRelatedEntities": true,
                "enableMergeEntity": true,
                "resources": [
                    {
                        "kind": "repository",
                        "selector": {"query": "true"},
                        "port": {"entity": {"mappings": {
                            "identifier": ".name",
                            "title": ".name",
                            "blueprint": "\"service\"",
                            "properties": {
                                "readme": "file://README.md",
                                "url": ".html_url",
                                "defaultBranch": ".default_branch"
                            }
                        }}}
                    },
                    {
                        "kind": "pull-request",
                        "selector": {"query": ".state == \"open\""},
                        "port": {"entity": {"mappings": {
                            "identifier": ".head.repo.name + (.id|tostring)",
                            "title": ".title",
                            "blueprint": "\"githubPullRequest\"",
                            "properties": {"creator": ".user.login", "status": ".status"},
                            "relations": {"repository": ".head.repo.name"}
                        }}}
                    }
                ]
            },
            "changelogDestination": {"type": "KAFKA"},
            "resyncState": {
                "status": "completed",
                "lastResyncStart": "2026-11-23T08:00:00.000Z",
                "lastResyncEnd": "2026-11-23T08:03:12.000Z",
                "nextResync": null,
                "intervalInMinuets": 60,
                "updatedAt": "2026-11-23T08:03:12.000Z"
            },
            "logAttributes": {"ingestId": "log-gh-1a2b", "ingestUrl": "https://ingest.port.io/logs/log-gh-1a2b"},
            "createdBy": "sandbox-admin",
            "updatedBy": "sandbox-admin",
            "createdAt": "2026-01-12T09:30:00.000Z",
            "updatedAt": "2026-11-23T08:03:12.000Z"
        }),
        json!({
            "_id": "integration_8d3e0b71",
            "_orgId": "org_sandbox",
            "identifier": "pagerduty-prod",
            "installationId": "pagerduty-prod",
            "title": "PagerDuty",
            "installationAppType": "pagerduty",
            "integrationType": "pagerduty",
            "installationType": "OnPrem",
            "version": "0.1.140",
            "actionsProcessingEnabled": false,
            "config": {
                "deleteDependentEntities": true,
                "createMissingRelatedEntities": true,
                "resources": [
                    {
                        "kind": "services",
                        "selector": {"query": "true"},
                        "port": {"entity": {"mappings": {
                            "identifier": ".id",
                            "title": ".name",
                            "blueprint": "\"pagerdutyService\"",
                            "properties": {"status": ".status", "url": ".html_url"}
                        }}}
                    }
                ]
            },
            "changelogDestination": {"type": "WEBHOOK", "url": "https://hooks.example.com/port"},
            "resyncState": {
                "status": "failed",
                "lastResyncStart": "2026-11-23T07:00:00.000Z",
                "lastResyncEnd": "2026-11-23T07:00:41.000Z",
                "nextResync": null,
                "intervalInMinuets": 1440,
                "updatedAt": "2026-11-23T07:00:41.000Z"
            },
            "logAttributes": {"ingestId": "log-pd-7f3c", "ingestUrl": "https://ingest.port.io/logs/log-pd-7f3c"},
            "createdBy": "sandbox-admin",
            "updatedBy": "sandbox-admin",
            "createdAt": "2026-03-02T14:00:00.000Z",
            "updatedAt": "2026-11-23T07:00:41.000Z"
        }),
        json!({
            "_id": "integration_c41a96f2",
            "_orgId": "org_sandbox",
            "identifier": "k8s-exporter-eu",
            "installationId": "k8s-exporter-eu",
            "title": "Kubernetes (eu-west-1)",
            "installationAppType": "kubernetes",
            "integrationType": "kubernetes",
            "installationType": "OnPrem",
            "version": "0.2.54",
            "actionsProcessingEnabled": false,
            "config": {
                "deleteDependentEntities": false,
                "createMissingRelatedEntities": true,
                "resources": [
                    {
                        "kind": "apps/v1/deployments",
                        "selector": {"query": ".metadata.namespace | startswith(\"kube\") | not"},
                        "port": {"entity": {"mappings": [{
                            "identifier": ".metadata.name + \"-\" + .metadata.namespace",
                            "title": ".metadata.name",
                            "blueprint": "\"workload\"",
                            "properties": {"replicas": ".spec.replicas"},
                            "relations": {"namespace": ".metadata.namespace"}
                        }]}}
                    }
                ]
            },
            "changelogDestination": {},
            "resyncState": {
                "status": "running",
                "lastResyncStart": "2026-11-23T09:15:00.000Z",
                "lastResyncEnd": null,
                "nextResync": null,
                "intervalInMinuets": null,
                "updatedAt": "2026-11-23T09:15:00.000Z"
            },
            "logAttributes": {"ingestId": "log-k8s-5e9d", "ingestUrl": "https://ingest.port.io/logs/log-k8s-5e9d"},
            "createdBy": "sandbox-admin",
            "updatedBy": "sandbox-admin",
            "createdAt": "2026-05-20T11:45:00.000Z",
            "updatedAt": "2026-11-23T09:15:00.000Z"
        }),
        json!({
            "_id": "integration_3b9d7c42",
            "_orgId": "org_sandbox",
            "identifier": "jira-cloud",
            "installationId": "jira-cloud",
            "title": "Jira",
            "installationAppType": "jira",
            "integrationType": "jira",
            "installationType": "OnPrem",
            "version": "0.4.21",
            "actionsProcessingEnabled": false,
            "config": jira_config(JIRA_BROKEN_IDENTIFIER),
            "changelogDestination": {},
            "resyncState": {
                "status": "failed",
                "lastResyncStart": "2026-11-30T06:00:00.000Z",
                "lastResyncEnd": "2026-11-30T06:00:52.000Z",
                "nextResync": "2026-12-01T06:00:00.000Z",
                "intervalInMinuets": 1440,
                "updatedAt": "2026-11-30T06:00:52.000Z"
            },
            "logAttributes": {"ingestId": "log-jira-2c8e", "ingestUrl": "https://ingest.port.io/logs/log-jira-2c8e"},
            "createdBy": "sandbox-admin",
            "updatedBy": "sandbox-admin",
            "createdAt": "2026-09-14T10:20:00.000Z",
            "updatedAt": "2026-11-29T16:20:00.000Z"
        }),
    ]
}

/// Event logs per integration identifier, newest first.
fn logs(identifier: &str) -> Vec<Value> {
    let entry =
        |id: &str, ts: &str, level: &str, kind: &str, phase: &str, event: &str, msg: &str| {
            json!({
                "_id": id,
                "timestamp": ts,
                "level": level,
                "message": msg,
                "extra": {"kind": kind, "etl_phase": phase, "event_id": event}
            })
        };
    match identifier {
        "github-ocean" => vec![
            entry(
                "log_gh_004",
                "2026-11-23T08:03:12.000Z",
                "INFO",
                "pull-request",
                "load",
                "evt_gh_42",
                "Resync finished: 212 entities upserted, 3 deleted",
            ),
            entry(
                "log_gh_003",
                "2026-11-23T08:02:40.000Z",
                "WARNING",
                "pull-request",
                "transform",
                "evt_gh_42",
                "2 items skipped: relation target \"legacy-repo\" not found",
            ),
            entry(
                "log_gh_002",
                "2026-11-23T08:00:35.000Z",
                "INFO",
                "repository",
                "extract",
                "evt_gh_42",
                "Fetched 87 repositories",
            ),
            entry(
                "log_gh_001",
                "2026-11-23T08:00:00.000Z",
                "INFO",
                "repository",
                "extract",
                "evt_gh_42",
                "Resync started",
            ),
        ],
        "pagerduty-prod" => vec![
            entry(
                "log_pd_003",
                "2026-11-23T07:00:41.000Z",
                "ERROR",
                "services",
                "transform",
                "evt_pd_7",
                "jq error in mapping of kind services: .escalation_policy.summary: cannot index null",
            ),
            entry(
                "log_pd_002",
                "2026-11-23T07:00:40.000Z",
                "ERROR",
                "services",
                "load",
                "evt_pd_7",
                "Resync failed: 0 entities upserted",
            ),
            entry(
                "log_pd_001",
                "2026-11-23T07:00:00.000Z",
                "INFO",
                "services",
                "extract",
                "evt_pd_7",
                "Resync started",
            ),
        ],
        "k8s-exporter-eu" => vec![entry(
            "log_k8s_001",
            "2026-11-23T09:15:00.000Z",
            "INFO",
            "apps/v1/deployments",
            "extract",
            "evt_k8s_3",
            "Resync started",
        )],
        "jira-cloud" => {
            let issue_error = |n: usize, ts: &str| {
                entry(
                    &format!("log_jira_{:03}", 10 + n),
                    ts,
                    "ERROR",
                    "issue",
                    "transform",
                    JIRA_FAILED_RUN,
                    &format!(
                        "Item ex_jira_issue_{n} of kind `issue` (resource 1) was not loaded: \
                         identifier is null (`{JIRA_BROKEN_IDENTIFIER}`: gave null: Port's \
                         framework skips this entity)"
                    ),
                )
            };
            vec![
                entry(
                    "log_jira_020",
                    "2026-11-30T06:00:52.000Z",
                    "ERROR",
                    "issue",
                    "load",
                    JIRA_FAILED_RUN,
                    "Resync failed: 4 objects failed (issue); 2 entities upserted",
                ),
                issue_error(4, "2026-11-30T06:00:48.000Z"),
                issue_error(3, "2026-11-30T06:00:48.000Z"),
                issue_error(2, "2026-11-30T06:00:47.000Z"),
                issue_error(1, "2026-11-30T06:00:47.000Z"),
                entry(
                    "log_jira_009",
                    "2026-11-30T06:00:31.000Z",
                    "INFO",
                    "issue",
                    "extract",
                    JIRA_FAILED_RUN,
                    "Fetched 4 issues",
                ),
                entry(
                    "log_jira_008",
                    "2026-11-30T06:00:09.000Z",
                    "INFO",
                    "project",
                    "extract",
                    JIRA_FAILED_RUN,
                    "Fetched 2 projects",
                ),
                entry(
                    "log_jira_007",
                    "2026-11-30T06:00:00.000Z",
                    "INFO",
                    "project",
                    "extract",
                    JIRA_FAILED_RUN,
                    "Resync started",
                ),
                entry(
                    "log_jira_002",
                    "2026-11-29T06:01:04.000Z",
                    "INFO",
                    "issue",
                    "load",
                    JIRA_GOOD_RUN,
                    "Resync finished successfully: 6 entities upserted",
                ),
                entry(
                    "log_jira_001",
                    "2026-11-29T06:00:00.000Z",
                    "INFO",
                    "project",
                    "extract",
                    JIRA_GOOD_RUN,
                    "Resync started",
                ),
            ]
        }
        _ => Vec::new(),
    }
}

/// jira-cloud's two runs: the good one, then the failed one.
const JIRA_GOOD_RUN: &str = "5d2f8a61-3c4e-4b7a-9f10-2e6b8c9d0a13";
const JIRA_FAILED_RUN: &str = "a41c7e92-8b3d-4f25-b6e0-7d9f1c2a3b48";

/// A finished (or running) run as the seed records it.
struct Past {
    event_id: &'static str,
    state: &'static str,
    created_at: &'static str,
    updated_at: &'static str,
    duration: f64,
    /// `None`: the integration's current config.
    config: Option<Value>,
    /// Per resource, in config order: (raw, filtered out, failed, skipped).
    counts: Vec<(f64, f64, f64, f64)>,
    deleted: f64,
}

/// Runs per integration, newest first.
fn history(identifier: &str) -> Vec<Past> {
    let past = |event_id, state, created_at, updated_at, duration, counts| Past {
        event_id,
        state,
        created_at,
        updated_at,
        duration,
        config: None,
        counts,
        deleted: 0.0,
    };
    match identifier {
        "github-ocean" => vec![
            Past {
                deleted: 3.0,
                ..past(
                    "evt_gh_42",
                    COMPLETED,
                    "2026-11-23T08:00:00.000Z",
                    "2026-11-23T08:03:12.000Z",
                    192.0,
                    vec![(87.0, 0.0, 0.0, 0.0), (132.0, 5.0, 0.0, 2.0)],
                )
            },
            past(
                "evt_gh_41",
                COMPLETED,
                "2026-11-22T08:00:00.000Z",
                "2026-11-22T08:02:55.000Z",
                175.0,
                vec![(86.0, 0.0, 0.0, 0.0), (129.0, 4.0, 0.0, 0.0)],
            ),
        ],
        "pagerduty-prod" => vec![
            past(
                "evt_pd_7",
                FAILED,
                "2026-11-23T07:00:00.000Z",
                "2026-11-23T07:00:41.000Z",
                41.0,
                vec![(14.0, 0.0, 14.0, 0.0)],
            ),
            past(
                "evt_pd_6",
                COMPLETED,
                "2026-11-22T07:00:00.000Z",
                "2026-11-22T07:00:38.000Z",
                38.0,
                vec![(14.0, 0.0, 0.0, 0.0)],
            ),
        ],
        "k8s-exporter-eu" => vec![
            past(
                "evt_k8s_3",
                SYNCING,
                "2026-11-23T09:15:00.000Z",
                "2026-11-23T09:15:00.000Z",
                0.0,
                vec![(40.0, 12.0, 0.0, 0.0)],
            ),
            past(
                "evt_k8s_2",
                COMPLETED,
                "2026-11-22T09:15:00.000Z",
                "2026-11-22T09:16:02.000Z",
                62.0,
                vec![(40.0, 12.0, 0.0, 0.0)],
            ),
        ],
        "jira-cloud" => vec![
            past(
                JIRA_FAILED_RUN,
                FAILED,
                "2026-11-30T06:00:00.000Z",
                "2026-11-30T06:00:52.000Z",
                52.0,
                vec![(2.0, 0.0, 0.0, 0.0), (4.0, 0.0, 4.0, 0.0)],
            ),
            Past {
                config: Some(jira_config(JIRA_GOOD_IDENTIFIER)),
                ..past(
                    JIRA_GOOD_RUN,
                    COMPLETED,
                    "2026-11-29T06:00:00.000Z",
                    "2026-11-29T06:01:04.000Z",
                    64.0,
                    vec![(2.0, 0.0, 0.0, 0.0), (4.0, 0.0, 0.0, 0.0)],
                )
            },
        ],
        _ => Vec::new(),
    }
}

/// Raw objects per kind, as the exporters would have sent them (at most five per kind).
fn examples(identifier: &str) -> Vec<(&'static str, Vec<Value>)> {
    match identifier {
        "github-ocean" => vec![
            (
                "repository",
                vec![
                    json!({"id": 70112, "name": "payments-api", "full_name": "acme/payments-api", "private": true,
                        "html_url": "https://github.com/acme/payments-api", "default_branch": "main", "language": "Go"}),
                    json!({"id": 70113, "name": "web-frontend", "full_name": "acme/web-frontend", "private": true,
                        "html_url": "https://github.com/acme/web-frontend", "default_branch": "main", "language": "TypeScript"}),
                    json!({"id": 70120, "name": "infra", "full_name": "acme/infra", "private": true,
                        "html_url": "https://github.com/acme/infra", "default_branch": "master", "language": "HCL"}),
                ],
            ),
            (
                "pull-request",
                vec![
                    json!({"id": 1901, "number": 412, "title": "Retry card captures on timeout", "state": "open",
                        "status": "open", "user": {"login": "dana"}, "head": {"ref": "retry-captures", "repo": {"name": "payments-api"}}}),
                    json!({"id": 1907, "number": 88, "title": "Dark mode toggle", "state": "open",
                        "status": "open", "user": {"login": "lee"}, "head": {"ref": "dark-mode", "repo": {"name": "web-frontend"}}}),
                    json!({"id": 1850, "number": 405, "title": "Bump go to 1.23", "state": "closed",
                        "status": "merged", "user": {"login": "sam"}, "head": {"ref": "go-1.23", "repo": {"name": "payments-api"}}}),
                ],
            ),
        ],
        "pagerduty-prod" => vec![(
            "services",
            vec![
                json!({"id": "PX1A2B3", "name": "Payments API", "status": "active",
                    "html_url": "https://acme.pagerduty.com/service-directory/PX1A2B3",
                    "escalation_policy": {"id": "PE1", "summary": "Payments on-call"}}),
                json!({"id": "PX4C5D6", "name": "Web Frontend", "status": "warning",
                    "html_url": "https://acme.pagerduty.com/service-directory/PX4C5D6",
                    "escalation_policy": {"id": "PE2", "summary": "Web on-call"}}),
                json!({"id": "PX7E8F9", "name": "Batch Jobs", "status": "disabled",
                    "html_url": "https://acme.pagerduty.com/service-directory/PX7E8F9",
                    "escalation_policy": null}),
            ],
        )],
        "k8s-exporter-eu" => vec![(
            "apps/v1/deployments",
            vec![
                json!({"metadata": {"name": "payments-api", "namespace": "payments", "uid": "6c1e0f4a-1"},
                    "spec": {"replicas": 3}, "status": {"availableReplicas": 3}}),
                json!({"metadata": {"name": "web-frontend", "namespace": "web", "uid": "6c1e0f4a-2"},
                    "spec": {"replicas": 2}, "status": {"availableReplicas": 2}}),
                json!({"metadata": {"name": "coredns", "namespace": "kube-system", "uid": "6c1e0f4a-3"},
                    "spec": {"replicas": 2}, "status": {"availableReplicas": 2}}),
            ],
        )],
        "jira-cloud" => vec![
            (
                "project",
                vec![
                    json!({"id": "10000", "key": "PAY", "name": "Payments", "projectTypeKey": "software",
                        "self": "https://acme.atlassian.net/rest/api/3/project/10000",
                        "lead": {"displayName": "Dana Cho", "emailAddress": "dana@acme.example"}}),
                    json!({"id": "10001", "key": "WEB", "name": "Web", "projectTypeKey": "software",
                        "self": "https://acme.atlassian.net/rest/api/3/project/10001",
                        "lead": {"displayName": "Lee Park", "emailAddress": "lee@acme.example"}}),
                ],
            ),
            (
                "issue",
                vec![
                    jira_issue(
                        "10231",
                        "PAY-101",
                        "Card captures time out under load",
                        "In Progress",
                        "Bug",
                        "High",
                        Some("dana@acme.example"),
                        ("PAY", "Payments"),
                    ),
                    jira_issue(
                        "10232",
                        "PAY-102",
                        "Add idempotency keys to refunds",
                        "To Do",
                        "Story",
                        "Medium",
                        None,
                        ("PAY", "Payments"),
                    ),
                    jira_issue(
                        "10240",
                        "WEB-7",
                        "Dark mode toggle",
                        "In Review",
                        "Story",
                        "Low",
                        Some("lee@acme.example"),
                        ("WEB", "Web"),
                    ),
                    jira_issue(
                        "10244",
                        "WEB-12",
                        "Checkout button misaligned on Safari",
                        "To Do",
                        "Bug",
                        "Medium",
                        Some("sam@acme.example"),
                        ("WEB", "Web"),
                    ),
                ],
            ),
        ],
        _ => Vec::new(),
    }
}

/// A raw issue as Jira's REST API returns it: the key at `.key`, not under `.fields`.
#[allow(clippy::too_many_arguments)]
fn jira_issue(
    id: &str,
    key: &str,
    summary: &str,
    status: &str,
    issue_type: &str,
    priority: &str,
    assignee: Option<&str>,
    (project_key, project_name): (&str, &str),
) -> Value {
    json!({
        "id": id,
        "key": key,
        "self": format!("https://acme.atlassian.net/rest/api/3/issue/{id}"),
        "fields": {
            "summary": summary,
            "status": {"name": status, "statusCategory": {"key": "indeterminate"}},
            "issuetype": {"name": issue_type},
            "priority": {"name": priority},
            "assignee": assignee.map(|a| json!({"emailAddress": a})),
            "created": "2026-11-10T09:12:00.000+0000",
            "updated": "2026-11-28T15:40:00.000+0000",
            "project": {"key": project_key, "name": project_name}
        }
    })
}

/// An integration's seeded runs, examples and logs; `config` is its current config.
pub fn sync_data(identifier: &str, config: &Value) -> SyncData {
    let runs: VecDeque<Run> = history(identifier)
        .into_iter()
        .map(|p| Run {
            event_id: p.event_id.into(),
            state: p.state.into(),
            created_at: p.created_at.into(),
            updated_at: p.updated_at.into(),
            config: p.config.unwrap_or_else(|| config.clone()),
            duration: p.duration,
            started: None,
            outcome: Some(Outcome {
                counts: p
                    .counts
                    .iter()
                    .enumerate()
                    .map(|(i, (raw, filtered, failed, skipped))| {
                        (i, Counts::new(*raw, *filtered, *failed, *skipped))
                    })
                    .collect(),
                ..Outcome::default()
            }),
            deleted: p.deleted,
        })
        .collect();
    let last_good_config = runs
        .iter()
        .find(|r| r.state == COMPLETED)
        .map(|r| r.config.clone());
    let examples = examples(identifier)
        .into_iter()
        .map(|(kind, list)| {
            let short = kind.rsplit('/').next().unwrap_or(kind);
            let list = list
                .into_iter()
                .enumerate()
                .map(|(n, data)| {
                    json!({"_id": format!("ex_{}_{short}_{}", identifier.split('-').next().unwrap_or(identifier), n + 1), "data": data})
                })
                .collect();
            (kind.to_string(), list)
        })
        .collect();
    SyncData {
        runs,
        request: None,
        examples,
        logs: logs(identifier).into(),
        last_good_config,
    }
}
