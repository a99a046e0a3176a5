//! Running a mapping locally on sample items: what Port's integration framework would make of
//! them, without a resync.
//!
//! Per item and resource: whether the selector keeps it, and the entity each mapping would
//! produce (identifier, title, blueprint, properties, relations), with each expression's error
//! in place of its value. Ocean's rules: the selector must yield `true`; with `itemsToParse`,
//! each element of that array is mapped with the raw item's fields plus `.item`; a field takes
//! its expression's first output; an identifier or relation given as a search query has each
//! of its string leaves evaluated.

use serde_json::{Map, Value, json};

use super::{MappingLimits, static_blueprint};

/// One expression's first output, or why there is none; an expression over the length or depth
/// limit is refused before jaq parses it.
fn evaluate(expression: &str, input: &Value, limits: &MappingLimits) -> Result<Value, String> {
    if let Some(refusal) = limits.refuse_expression(expression) {
        return Err(refusal);
    }
    super::evaluate(expression, input)
}

/// Runs `config` (a whole config, or one resource) on `items`, for the resources of `kind`.
///
/// Runs callers' jq without bounds of its own: only the preview worker process calls it.
pub fn preview(
    config: &Value,
    kind: Option<&str>,
    items: &[Value],
    limits: &MappingLimits,
) -> Result<Value, String> {
    let resources: Vec<Value> = match (config.get("resources"), config.get("port")) {
        (Some(Value::Array(r)), _) => r.clone(),
        (_, Some(_)) => vec![config.clone()],
        _ => {
            return Err(
                "config must be an integration config ({resources: [...]}) or one resource ({kind, selector, port})"
                    .into(),
            );
        }
    };
    let chosen: Vec<(usize, &Value)> = resources
        .iter()
        .enumerate()
        .filter(|(_, r)| kind.is_none_or(|k| r["kind"].as_str() == Some(k)))
        .collect();
    if chosen.is_empty() {
        return Err(match kind {
            Some(k) => format!("no resource of kind `{k}` in the config"),
            None => "the config has no resources".into(),
        });
    }
    let mut results = Vec::new();
    for (r, resource) in chosen {
        for (i, item) in items.iter().enumerate() {
            let mut result = json!({"resource": r, "kind": resource["kind"], "item": i});
            let query = resource["selector"]["query"].as_str().unwrap_or("true");
            match evaluate(query, item, limits) {
                Ok(Value::Bool(true)) => result["kept"] = json!(true),
                Ok(other) => {
                    result["kept"] = json!(false);
                    if !other.is_boolean() {
                        result["selectorNote"] = json!(format!(
                            "the selector gave {other}, not true: the item is skipped"
                        ));
                    }
                }
                Err(e) => {
                    result["kept"] = json!(false);
                    result["selectorError"] = json!(e);
                }
            }
            if result["kept"] == json!(true) {
                result["entities"] = Value::Array(entities(resource, item, limits));
            }
            results.push(result);
        }
    }
    Ok(json!({"results": results}))
}

fn entities(resource: &Value, item: &Value, limits: &MappingLimits) -> Vec<Value> {
    let static_blueprint = static_blueprint(resource);
    let inputs: Vec<Value> = match resource["port"]["itemsToParse"].as_str() {
        None => vec![item.clone()],
        Some(expr) => match evaluate(expr, item, limits) {
            Ok(Value::Array(elements)) => elements
                .into_iter()
                .map(|e| {
                    let mut input = item.as_object().cloned().unwrap_or_default();
                    input.insert("item".into(), e);
                    Value::Object(input)
                })
                .collect(),
            Ok(other) => {
                return vec![
                    json!({"errors": {"port.itemsToParse": format!("gave {other}, not an array")}}),
                ];
            }
            Err(e) => return vec![json!({"errors": {"port.itemsToParse": e}})],
        },
    };
    let mappings = &resource["port"]["entity"]["mappings"];
    let list: Vec<&Value> = match mappings {
        Value::Array(m) => m.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for input in &inputs {
        for mapping in &list {
            let mut entity = Map::new();
            let mut errors = Map::new();
            for key in ["identifier", "title", "blueprint", "team", "icon"] {
                if let Some(expr) = mapping.get(key) {
                    // The legacy AWS exporter takes the blueprint as written, quotes stripped.
                    if key == "blueprint"
                        && static_blueprint
                        && let Some(text) = expr.as_str()
                    {
                        entity.insert(key.into(), json!(text.trim_matches('"')));
                        continue;
                    }
                    let v = eval_field(expr, input, key, &mut errors, limits);
                    entity.insert(key.into(), v);
                }
            }
            for group in ["properties", "relations"] {
                let mut values = Map::new();
                for (name, expr) in mapping[group].as_object().into_iter().flatten() {
                    let v =
                        eval_field(expr, input, &format!("{group}.{name}"), &mut errors, limits);
                    values.insert(name.clone(), v);
                }
                entity.insert(group.into(), Value::Object(values));
            }
            for key in ["identifier", "blueprint"] {
                if entity.get(key).is_some_and(Value::is_null) && !errors.contains_key(key) {
                    errors.insert(
                        key.into(),
                        json!(format!("gave null: Port's framework skips this entity")),
                    );
                }
            }
            if !errors.is_empty() {
                entity.insert("errors".into(), Value::Object(errors));
            }
            out.push(Value::Object(entity));
        }
    }
    out
}

/// A field's value: a jq expression's first output, a search query with its leaves evaluated,
/// or (on error) null with the error recorded under the field's path.
fn eval_field(
    expr: &Value,
    input: &Value,
    path: &str,
    errors: &mut Map<String, Value>,
    limits: &MappingLimits,
) -> Value {
    match expr {
        Value::String(s) if s.starts_with("file://") || s.starts_with("search://") => {
            json!(s)
        }
        Value::String(s) => evaluate(s, input, limits).unwrap_or_else(|e| {
            errors.insert(path.into(), json!(e));
            Value::Null
        }),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        eval_field(v, input, &format!("{path}.{k}"), errors, limits),
                    )
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| eval_field(v, input, &format!("{path}[{i}]"), errors, limits))
                .collect(),
        ),
        other => other.clone(),
    }
}
