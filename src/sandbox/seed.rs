//! The sandbox organization's starting data: three integrations in the shapes Port's own
//! clients read (see `port-api-notes.md`, section 2), with a few event logs each.

use serde_json::{Value, json};

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
    ]
}

/// Event logs per integration identifier, newest first.
pub fn logs(identifier: &str) -> Vec<Value> {
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
        _ => Vec::new(),
    }
}
