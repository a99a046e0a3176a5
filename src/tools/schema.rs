//! Input schemas every host accepts.
//!
//! Hosts differ in how much JSON Schema they understand: Cursor's gateway fails on any
//! `oneOf`/`anyOf`/`allOf`, Gemini rejects `$ref`/`$defs` and a `$schema` key, and several
//! clients reject `"type": ["T", "null"]` (rust-sdk#135). So schemas are generated from the
//! argument types with every subschema inlined, then optional values are stated by leaving the
//! property out of `required` instead of allowing `null`.

use std::sync::Arc;

use rmcp::model::JsonObject;
use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::Value;

/// The input schema of a tool whose arguments are `T`.
pub fn input_schema<T: JsonSchema>() -> Arc<JsonObject> {
    let mut settings = SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    settings.meta_schema = None;
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = schema.to_value();
    simplify(&mut value);
    let mut object = match value {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    };
    // The wrapper type's name and doc are noise to the model; the tool description says it all.
    object.remove("title");
    object.remove("description");
    object.remove("$defs");
    object
        .entry("properties")
        .or_insert_with(|| Value::Object(Default::default()));
    Arc::new(object)
}

/// Keywords whose value is one schema. schemars writes the schema of a `serde_json::Value` as
/// bare `true`, which several hosts reject (the MCP Inspector's `--strict` check calls it an
/// error); `{}` accepts the same values. (`additionalProperties: true` is a boolean that hosts
/// accept, and stays.)
const SCHEMA_KEYWORDS: [&str; 4] = ["items", "additionalItems", "contains", "propertyNames"];

/// Removes `null` from type unions, enums and defaults, collapses `anyOf: [X, {type:null}]`,
/// and writes boolean `true` subschemas as `{}`.
fn simplify(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            for key in SCHEMA_KEYWORDS {
                if let Some(v @ Value::Bool(true)) = obj.get_mut(key) {
                    *v = Value::Object(Default::default());
                }
            }
            if let Some(Value::Array(types)) = obj.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    obj.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(values)) = obj.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            if obj.get("default") == Some(&Value::Null) {
                obj.remove("default");
            }
            for key in ["anyOf", "oneOf"] {
                let Some(Value::Array(branches)) = obj.get(key) else {
                    continue;
                };
                let kept: Vec<Value> = branches
                    .iter()
                    .filter(|b| b.get("type") != Some(&Value::String("null".into())))
                    .cloned()
                    .collect();
                if let [Value::Object(only)] = kept.as_slice() {
                    let only = only.clone();
                    obj.remove(key);
                    for (k, v) in only {
                        obj.entry(k).or_insert(v);
                    }
                }
            }
            for v in obj.values_mut() {
                simplify(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(simplify),
        _ => {}
    }
}
