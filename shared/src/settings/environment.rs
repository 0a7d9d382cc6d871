//! The environment layer: a service's declared variables, parsed and turned into config
//! overrides.
//!
//! A set of variables is a struct of `Option`s (e.g. [`CommonVariables`](super::CommonVariables),
//! each service's `Variables`): the field name is the lowercase variable name and also the config
//! key it overrides, the field type is how the value is parsed. envy parses it (so a malformed
//! value is refused naming the variable and the value), and serde turns the set fields into
//! `(key, value)` overrides, so no variable is spelled anywhere else. A variable nobody declares
//! is never read: a config-file-only key such as the gateway's `host` cannot be set by a stray
//! `HOST` in the environment.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::SettingsError;

/// The config overrides from the variables of `V` found in `vars`; unset and empty variables
/// leave the file's value or the default in place.
pub(super) fn overrides<V>(
    vars: &[(String, String)],
) -> Result<Vec<(String, config::Value)>, SettingsError>
where
    V: DeserializeOwned + Serialize,
{
    let parsed: V = envy::from_iter(vars.iter().cloned())
        .map_err(|e| SettingsError::Env(redact_token(&e.to_string())))?;
    let serialized = serde_json::to_value(&parsed)
        .map_err(|e| SettingsError::Env(format!("cannot represent the variables: {e}")))?;
    let serde_json::Value::Object(fields) = serialized else {
        return Err(SettingsError::Env(
            "a set of environment variables must be a struct of named fields".to_owned(),
        ));
    };
    Ok(fields
        .into_iter()
        .filter_map(|(key, value)| Some((key, config_value(value)?)))
        .collect())
}

/// The variables as envy expects them: empty values mean "unset", as shells and compose files
/// often produce them.
pub(super) fn non_empty(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

/// A parsed variable as a config value; `None` for an unset one (JSON `null`).
fn config_value(value: serde_json::Value) -> Option<config::Value> {
    use serde_json::Value;
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => b.into(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into(),
            (None, Some(i)) => i.into(),
            (None, None) => n.as_f64()?.into(),
        },
        Value::String(s) => s.into(),
        Value::Array(items) => items
            .into_iter()
            .filter_map(config_value)
            .collect::<Vec<config::Value>>()
            .into(),
        Value::Object(fields) => fields
            .into_iter()
            .filter_map(|(key, value)| Some((key, config_value(value)?)))
            .collect::<config::Map<String, config::Value>>()
            .into(),
    })
}

/// envy echoes the bad value; a malformed token must still never reach a log line.
pub(super) fn redact_token(message: &str) -> String {
    let upper = message.to_ascii_uppercase();
    if upper.contains("GITHUB_API_TOKEN") {
        "GITHUB_API_TOKEN has an invalid value (not shown)".to_owned()
    } else if upper.contains("GITHUB_APP_PRIVATE_KEY") {
        "GITHUB_APP_PRIVATE_KEY has an invalid value (not shown)".to_owned()
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Serialize)]
    struct Sample {
        port: Option<u16>,
        enabled: Option<bool>,
        offset: Option<i32>,
        name: Option<String>,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        non_empty(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn set_variables_become_overrides_of_their_lowercase_key() {
        let found = overrides::<Sample>(&vars(&[
            ("PORT", "8080"),
            ("ENABLED", "false"),
            ("OFFSET", "-3"),
            ("NAME", ""),
            ("UNDECLARED", "x"),
        ]))
        .expect("parses");
        let mut keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["enabled", "offset", "port"]);
        let value = |key: &str| {
            found
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .expect("present")
        };
        assert_eq!(value("port").into_uint().expect("number"), 8080);
        assert!(!value("enabled").into_bool().expect("bool"));
        assert_eq!(value("offset").into_int().expect("number"), -3);
    }

    #[test]
    fn a_malformed_value_names_the_variable_and_value() {
        let Err(err) = overrides::<Sample>(&vars(&[("PORT", "eighty")])) else {
            panic!("must fail");
        };
        let msg = err.to_string();
        assert!(msg.contains("PORT") && msg.contains("eighty"), "{msg}");
    }
}
