//! Typed settings read from the environment once, at cold start. Each
//! function reads only the variables it needs, through these helpers, so a
//! missing or malformed variable fails the cold start with its name.

use crate::config::ConfigError;

/// The DynamoDB table every function shares.
pub const TABLE_NAME_VAR: &str = "TABLE_NAME";

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        Ok(_) => Err(ConfigError::BadVar {
            name,
            message: "must not be empty".into(),
        }),
        Err(_) => Err(ConfigError::MissingVar { name }),
    }
}

/// Where the functions keep their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub table_name: String,
}

impl StoreSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let table_name = required(TABLE_NAME_VAR)?;
        // DynamoDB's rule: 3-255 of [A-Za-z0-9_.-].
        let valid = (3..=255).contains(&table_name.len())
            && table_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            return Err(ConfigError::BadVar {
                name: TABLE_NAME_VAR,
                message: "must be 3 to 255 characters of letters, digits, '_', '.' and '-'".into(),
            });
        }
        Ok(Self { table_name })
    }
}
