//! Mapping validation: Port's own default mappings all pass; a broken expression stops an
//! update before anything reaches Port; `check-mapping` reports offline.

use std::{path::PathBuf, time::Instant};

use port_integrations_mcp::{
    config::ToolSelection,
    mapping::{
        MappingLimits, Verdict, check_config, check_expression, expressions, limits::nesting_depth,
    },
};
use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};

use crate::common::*;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/mapping-corpus")
}

/// Every jq expression of Port's default mappings (49 integrations) and of the Ocean examples
/// (48 files) is accepted, as Ocean's libjq accepts them.
#[test]
fn ports_own_mappings_are_all_accepted() {
    let started = Instant::now();
    let mut summary = Vec::new();
    for (folder, expected) in [("ocean", 2534usize), ("ocean-examples", 1297)] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join(folder))
            .unwrap_or_else(|e| panic!("assets/mapping-corpus: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml"))
            .collect();
        files.sort();
        let (mut checked, mut unchecked) = (0, 0);
        let (mut max_depth, mut max_len) = (0, 0);
        let mut refused = Vec::new();
        for file in &files {
            let config: Value =
                yaml_serde::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
            // The whole file, as an update or `check-mapping` checks it, within the default
            // limits (and on the stack the server gives jq work).
            let whole = config.clone();
            let findings = std::thread::Builder::new()
                .stack_size(port_integrations_mcp::mapping::limits::JQ_STACK_BYTES)
                .spawn(move || check_config(&whole, &MappingLimits::default()))
                .unwrap()
                .join()
                .unwrap()
                .unwrap();
            assert!(
                findings.iter().all(|f| f.outcome != "refused"),
                "{}: {findings:?}",
                file.display()
            );
            for (i, kind, field, expr) in expressions(&config) {
                checked += 1;
                max_depth = max_depth.max(nesting_depth(&expr));
                max_len = max_len.max(expr.len());
                match check_expression(&expr) {
                    Verdict::Accepted => {}
                    Verdict::AcceptedUnchecked(_) => unchecked += 1,
                    Verdict::Refused(m) => refused.push(format!(
                        "{}: resources[{i}] ({kind}) {field}: {m}: {expr}",
                        file.display()
                    )),
                }
            }
        }
        assert_eq!(checked, expected, "{folder}: expressions found");
        assert!(
            refused.is_empty(),
            "{folder}: false refusals:\n{}",
            refused.join("\n")
        );
        // The default limits leave a wide margin over Port's own mappings.
        let limits = MappingLimits::default();
        assert!(
            max_depth * 4 <= limits.max_depth,
            "{folder}: depth {max_depth}"
        );
        assert!(
            max_len * 4 <= limits.max_expression_bytes,
            "{folder}: length {max_len}"
        );
        summary.push(format!(
            "{folder}: {} files, {checked} expressions, {unchecked} unchecked, 0 refused, \
             deepest {max_depth}, longest {max_len} bytes",
            files.len()
        ));
    }
    eprintln!("{} in {:?}", summary.join("; "), started.elapsed());
}

/// The legacy AWS exporter's configs (Port's docs show them for S3 buckets, Lambda functions,
/// ECS clusters and services, SQS queues, SNS topics, App Runner services, ...): list-form
/// `mappings` under `AWS::` kinds, whose `blueprint` is static text, not jq. Written here in
/// their documented shape; `"blueprint": "s3"` was refused as "undefined filter s3/0".
#[test]
fn legacy_aws_exporter_configs_are_accepted() {
    let kinds = [
        ("AWS::S3::Bucket", "s3", ".BucketName"),
        ("AWS::Lambda::Function", "lambda", ".FunctionName"),
        ("AWS::ECS::Cluster", "ecsCluster", ".ClusterName"),
        ("AWS::ECS::Service", "ecsService", ".ServiceName"),
        ("AWS::SQS::Queue", "sqs", ".QueueName"),
        ("AWS::SNS::Topic", "sns", ".TopicName"),
        ("AWS::AppRunner::Service", "apprunner", ".ServiceId"),
        (
            "AWS::ElastiCache::CacheCluster",
            "aws_cache_cluster",
            ".CacheClusterId",
        ),
        (
            "AWS::RDS::DBInstance",
            "rdsInstance",
            ".DBInstanceIdentifier",
        ),
        ("AWS::DynamoDB::Table", "dynamodb", ".TableName"),
    ];
    let resources: Vec<Value> = kinds
        .iter()
        .map(|(kind, blueprint, id)| {
            json!({"kind": kind, "selector": {"aws": {"regions": ["eu-west-1"]}},
            "port": {"entity": {"mappings": [{
                "identifier": id, "title": id, "blueprint": blueprint,
                "properties": {
                    "link": "\"https://console.aws.amazon.com/go/view?arn=\" + .Arn",
                    "tags": ".Tags",
                    "region": ".Arn | split(\":\") | .[3]"
                }
            }]}}})
        })
        .collect();
    let config = json!({"resources": resources});
    let findings = check_config(&config, &MappingLimits::default()).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    assert!(
        expressions(&config)
            .iter()
            .all(|(_, _, field, _)| !field.ends_with(".blueprint")),
        "the static blueprint is not jq"
    );
}

async fn client_with(selection: ToolSelection) -> (FakePort, Client) {
    let port = FakePort::start().await;
    let tools = port
        .tools(&selection)
        // In-process, this program is the test harness: previews need the server's binary.
        .with_mapping_limits(mapping_limits());
    let client = connect_tools(tools, (), ClientLifecycleMode::Initialize).await;
    (port, client)
}

fn broken_config() -> Value {
    json!({"resources": [
        {"kind": "repository", "selector": {"query": "true"}, "port": {"entity": {"mappings": {
            "identifier": ".name", "blueprint": "\"service\"",
            "properties": {"url": ".html_url", "lang": ".language | ascii_downcasee"}
        }}}},
        {"kind": "pull-request", "selector": {"query": ".state == "}, "port": {"entity": {"mappings": [
            {"identifier": ".id | tostring", "blueprint": "\"pr\""}
        ]}}}
    ]})
}

#[tokio::test]
async fn a_broken_expression_stops_the_update_before_port() {
    let (port, client) = client_with(ToolSelection::default()).await;
    for (tool, body) in [
        (
            "update-integration-s-config",
            json!({"config": broken_config()}),
        ),
        (
            "update-integration",
            json!({"title": "x", "config": broken_config()}),
        ),
    ] {
        let r = call(
            &client,
            tool,
            json!({"identifier": "github-ocean", "body": body}),
        )
        .await;
        assert!(is_error(&r), "{tool}");
        let text = text(&r);
        assert!(
            text.starts_with(
                "The mapping has 2 jq expression(s) that Port's integration framework would refuse"
            ),
            "{text}"
        );
        assert!(text.contains("- resources[0] (kind `repository`) port.entity.mappings.properties.lang: jq compile error: undefined filter `ascii_downcasee/0`"), "{text}");
        assert!(
            text.contains("- resources[1] (kind `pull-request`) selector.query: jq syntax error"),
            "{text}"
        );
        let structured = r.structured_content.unwrap();
        assert_eq!(structured["error"], "invalid_mapping");
        assert_eq!(structured["findings"].as_array().unwrap().len(), 2);
    }
    assert!(port.port.requests().is_empty(), "Port received nothing");

    // A good mapping (with Ocean's single-quote habit) goes through.
    let good = json!({"resources": [{"kind": "repository", "selector": {"query": "true"},
        "port": {"entity": {"mappings": {"identifier": ".name", "blueprint": "\"service\"",
        "properties": {"description": ".description // ''"}}}}}]});
    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "github-ocean", "body": {"config": good}}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(port.api_requests().len(), 1);
}

#[tokio::test]
async fn the_escape_hatch_turns_the_check_off() {
    let (port, client) = client_with(ToolSelection {
        no_mapping_validation: true,
        ..Default::default()
    })
    .await;
    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "github-ocean", "body": {"config": broken_config()}}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(port.api_requests().len(), 1);
}

#[tokio::test]
async fn check_mapping_reports_offline() {
    let dir = std::env::temp_dir().join(format!("pim-mapping-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.json");
    std::fs::write(&broken, broken_config().to_string()).unwrap();
    let good = corpus().join("ocean/github.yml");
    let bin = env!("CARGO_BIN_EXE_port-integrations-mcp");
    let out = std::process::Command::new(bin)
        .args(["check-mapping", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.trim_end().ends_with("refused"), "{stdout}");
    assert!(stdout.contains(": 0 refused"), "{stdout}");

    let out = std::process::Command::new(bin)
        .args(["check-mapping", broken.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let file = broken.display();
    assert!(stdout.contains(&format!("{file}: resources[0] (repository) port.entity.mappings.properties.lang: refused: jq compile error: undefined filter `ascii_downcasee/0`")), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{file}: resources[1] (pull-request) selector.query: refused: jq syntax error"
        )),
        "{stdout}"
    );

    let out = std::process::Command::new(bin)
        .args([
            "check-mapping",
            "--format",
            "json",
            broken.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["refused"], 2);
    assert_eq!(
        report["files"][0]["findings"][0]["field"],
        "port.entity.mappings.properties.lang"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The preview reproduces, on sample items, the entities Port's default PagerDuty mapping makes.
#[tokio::test]
async fn preview_runs_a_corpus_mapping_on_sample_items() {
    use port_integrations_mcp::config::Toolset;
    let (port, client) = client_with(ToolSelection {
        toolsets: vec![Toolset::Mapping],
        ..Default::default()
    })
    .await;
    let config: Value = yaml_serde::from_str(
        &std::fs::read_to_string(corpus().join("ocean/pagerduty.yml")).unwrap(),
    )
    .unwrap();
    let service = json!({
        "id": "PSV1", "name": "Checkout", "status": "active", "html_url": "https://acme.pagerduty.com/services/PSV1",
        "__oncall_user": [
            {"escalation_level": 2, "user": {"email": "second@acme.io"}},
            {"escalation_level": 1, "user": {"email": "first@acme.io"}}
        ],
        "__analytics": {"mean_seconds_to_resolve": 5400, "mean_seconds_to_first_ack": 120, "mean_seconds_to_engage": 300}
    });
    let r = call(
        &client,
        "preview-integration-mapping",
        json!({"config": config, "kind": "services", "items": [service]}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    let results = r.structured_content.unwrap()["results"].clone();
    assert_eq!(
        results,
        json!([{
            "resource": 0, "kind": "services", "item": 0, "kept": true,
            "entities": [{
                "identifier": "PSV1", "title": "Checkout", "blueprint": "pagerdutyService",
                "properties": {
                    "status": "active", "url": "https://acme.pagerduty.com/services/PSV1",
                    "oncall": "first@acme.io", "secondaryOncall": "second@acme.io", "escalationLevels": 2,
                    "meanSecondsToResolve": 5400, "meanSecondsToFirstAck": 120, "meanSecondsToEngage": 300
                },
                "relations": {}
            }]
        }])
    );
    assert!(port.port.requests().is_empty(), "the preview is local");
}

#[tokio::test]
async fn preview_reports_selector_drops_parse_items_and_errors_in_place() {
    use port_integrations_mcp::config::Toolset;
    let (_port, client) = client_with(ToolSelection {
        toolsets: vec![Toolset::Mapping],
        ..Default::default()
    })
    .await;
    let resource = json!({
        "kind": "repository",
        "selector": {"query": ".archived == false"},
        "port": {
            "itemsToParse": ".teams",
            "entity": {"mappings": [{
                "identifier": ".name + \"-\" + .item.slug",
                "blueprint": "'team-repo'",
                "properties": {"stars": ".stars | tonumber", "size": ".size"}
            }]}
        }
    });
    let items = json!([
        {"name": "api", "archived": false, "stars": "12", "size": 3, "teams": [{"slug": "core"}, {"slug": "sre"}]},
        {"name": "old", "archived": true, "teams": []},
        {"name": "web", "archived": false, "stars": "many", "size": 1, "teams": [{"slug": "front"}]}
    ]);
    let r = call(
        &client,
        "preview-integration-mapping",
        json!({"config": resource, "items": items}),
    )
    .await;
    let results = r.structured_content.unwrap()["results"].clone();
    assert_eq!(results[0]["kept"], true);
    let ids: Vec<&str> = results[0]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["api-core", "api-sre"]);
    assert_eq!(
        results[0]["entities"][0]["blueprint"], "team-repo",
        "Ocean's single-quote rewrite applies"
    );
    assert_eq!(
        results[0]["entities"][0]["properties"],
        json!({"stars": 12, "size": 3})
    );
    assert_eq!(results[1]["kept"], false);
    assert!(results[1].get("entities").is_none());
    let web = &results[2]["entities"][0];
    assert_eq!(web["identifier"], "web-front");
    assert_eq!(web["properties"]["stars"], Value::Null);
    assert!(
        web["errors"]["properties.stars"]
            .as_str()
            .unwrap()
            .starts_with("jq error"),
        "{web}"
    );

    let r = call(
        &client,
        "preview-integration-mapping",
        json!({"config": resource, "items": []}),
    )
    .await;
    assert!(
        text(&r).starts_with("Invalid argument `items`"),
        "{}",
        text(&r)
    );
}
