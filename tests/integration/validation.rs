//! Invalid arguments are refused with a message naming the argument, and Port receives nothing.

use serde_json::{Value, json};

use crate::common::*;

async fn refused(tool: &str, arguments: Value, argument: &str, message_part: &str) {
    let (port, client) = setup().await;
    let result = call(&client, tool, arguments.clone()).await;
    assert!(is_error(&result), "{tool} {arguments}: {result:?}");
    let text = text(&result);
    assert!(
        text.starts_with(&format!("Invalid argument `{argument}`: ")),
        "{tool} {arguments}: {text}"
    );
    assert!(text.contains(message_part), "{tool} {arguments}: {text}");
    assert!(text.ends_with("Nothing was sent to Port."), "{text}");
    let structured = result.structured_content.unwrap();
    assert_eq!(structured["error"], json!("invalid_argument"));
    assert_eq!(structured["argument"], json!(argument));
    assert!(
        port.port.requests().is_empty(),
        "Port was called: {:?}",
        port.port.requests()
    );
}

#[tokio::test]
async fn logs_limit_out_of_range() {
    refused(
        "get-integration-s-event-logs",
        json!({"identifier": "x", "limit": 301}),
        "limit",
        "between 0 and 300, got 301",
    )
    .await;
    refused(
        "get-integration-s-event-logs",
        json!({"identifier": "x", "limit": -1}),
        "limit",
        "between 0 and 300, got -1",
    )
    .await;
    refused(
        "get-integration-s-event-logs",
        json!({"identifier": "x", "limit": "ten"}),
        "limit",
        "invalid type",
    )
    .await;
}

#[tokio::test]
async fn unknown_enum_values() {
    refused(
        "get-integration-s-event-logs",
        json!({"identifier": "x", "levels": ["ERROR", "CRITICAL"]}),
        "levels[1]",
        "unknown variant `CRITICAL`",
    )
    .await;
    refused(
        "get-integration-s-event-logs",
        json!({"identifier": "x", "etl_phases": ["load", "enrich"]}),
        "etl_phases[1]",
        "unknown variant `enrich`",
    )
    .await;
    refused(
        "get-integration-s-event-logs",
        json!({"identifier": "x", "direction": "sideways"}),
        "direction",
        "expected `up` or `down`",
    )
    .await;
    refused(
        "get-integration",
        json!({"identifier": "x", "byField": "title"}),
        "byField",
        "unknown variant `title`",
    )
    .await;
    refused(
        "update-integration",
        json!({"identifier": "x", "body": {"changelogDestination": {"type": "EMAIL"}}}),
        "body.changelogDestination.type",
        "unknown variant `EMAIL`",
    )
    .await;
}

#[tokio::test]
async fn empty_arrays_and_bad_timestamps() {
    refused(
        "get-integration-s-event-logs",
        json!({"identifier": "x", "levels": []}),
        "levels",
        "at least one",
    )
    .await;
    refused(
        "get-integration-s-event-logs",
        json!({"identifier": "x", "kinds": ["pr", " "]}),
        "kinds[1]",
        "must not be empty",
    )
    .await;
    refused(
        "get-integration-s-event-logs",
        json!({"identifier": "x", "timestamp": "last tuesday"}),
        "timestamp",
        "ISO 8601",
    )
    .await;
}

#[tokio::test]
async fn missing_or_empty_identifier() {
    for tool in [
        "get-integration",
        "update-integration",
        "delete-integration",
        "get-integration-s-event-logs",
    ] {
        refused(tool, json!({}), "identifier", "missing field `identifier`").await;
        refused(
            tool,
            json!({"identifier": ""}),
            "identifier",
            "must not be empty",
        )
        .await;
        refused(
            tool,
            json!({"identifier": "   "}),
            "identifier",
            "must not be empty",
        )
        .await;
        refused(
            tool,
            json!({"identifier": 42}),
            "identifier",
            "invalid type",
        )
        .await;
    }
}

#[tokio::test]
async fn unknown_arguments_are_refused() {
    refused(
        "get-all-integrations",
        json!({"verbose": true}),
        "verbose",
        "unknown field `verbose`",
    )
    .await;
    refused(
        "get-all-integrations-meta-data",
        json!({"page": 2}),
        "page",
        "unknown field `page`",
    )
    .await;
    refused(
        "delete-integration",
        json!({"identifier": "x", "force": true}),
        "force",
        "unknown field `force`",
    )
    .await;
}

#[tokio::test]
async fn config_body_must_be_exactly_config() {
    refused(
        "update-integration-s-config",
        json!({"identifier": "x"}),
        "body",
        "missing field `body`",
    )
    .await;
    refused(
        "update-integration-s-config",
        json!({"identifier": "x", "body": {}}),
        "body.config",
        "is required",
    )
    .await;
    refused(
        "update-integration-s-config",
        json!({"identifier": "x", "body": {"config": {}, "title": "t"}}),
        "body.title",
        "unknown field `title`",
    )
    .await;
    refused(
        "update-integration-s-config",
        json!({"identifier": "x", "body": {"config": "all"}}),
        "body.config",
        "invalid type",
    )
    .await;
}

#[tokio::test]
async fn mapping_shape_is_checked() {
    let resource = |mappings: Value| {
        json!({"identifier": "x", "body": {"config": {"resources": [
            {"kind": "repository", "selector": {"query": "true"}, "port": {"entity": {"mappings": mappings}}}
        ]}}})
    };
    refused(
        "update-integration-s-config",
        resource(json!({"identifier": ".id"})),
        "body.config.resources[0].port.entity.mappings.blueprint",
        "is required",
    )
    .await;
    refused(
        "update-integration-s-config",
        resource(json!([{"identifier": ".id", "blueprint": "\"s\""}, "oops"])),
        "body.config.resources[0].port.entity.mappings[1]",
        "must be a mapping object",
    )
    .await;
    refused(
        "update-integration",
        json!({"identifier": "x", "body": {"config": {"resources": [{"selector": {}, "port": {"entity": {"mappings": {}}}}]}}}),
        "body.config.resources[0]",
        "missing field `kind`",
    )
    .await;
    refused(
        "update-integration",
        json!({"identifier": "x", "body": {"changelogDestination": {"type": "WEBHOOK"}}}),
        "body.changelogDestination.url",
        "required when type is WEBHOOK",
    )
    .await;
}

#[tokio::test]
async fn body_over_one_mebibyte() {
    let big = "x".repeat(1024 * 1024);
    refused(
        "update-integration",
        json!({"identifier": "x", "body": {"title": big}}),
        "body",
        "at most 1 MiB",
    )
    .await;
    refused(
        "update-integration-s-config",
        json!({"identifier": "x", "body": {"config": {"blob": big}}}),
        "body",
        "at most 1 MiB",
    )
    .await;
}
