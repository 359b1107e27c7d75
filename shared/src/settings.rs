//! Typed settings read from the environment once, at cold start. Each
//! function reads only the variables it needs, through these helpers, so a
//! missing or malformed variable fails the cold start with its name.

use std::time::Duration;

use crate::config::{ConfigError, FLEET_CONFIG_FILE_VAR, FLEET_CONFIG_VAR, FleetConfig};
use crate::domain::parse_duration;

/// The fleet configuration as the environment names it.
impl FleetConfig {
    /// Reads the configuration named by the environment: inline
    /// [`FLEET_CONFIG_VAR`](crate::config::FLEET_CONFIG_VAR) first, else the file at [`FLEET_CONFIG_FILE_VAR`](crate::config::FLEET_CONFIG_FILE_VAR).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&process_env)
    }

    pub fn from_vars(vars: Lookup<'_>) -> Result<Self, ConfigError> {
        Self::seed_from_vars(vars).map(|(_, config)| config)
    }

    /// The configuration the environment names, and its document (the
    /// seed of the stored configuration).
    pub fn seed_from_vars(vars: Lookup<'_>) -> Result<(serde_json::Value, Self), ConfigError> {
        if let Some(text) = vars(FLEET_CONFIG_VAR) {
            return Self::document(&text, FLEET_CONFIG_VAR);
        }
        let Some(path) = vars(FLEET_CONFIG_FILE_VAR) else { return Err(ConfigError::Missing) };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: std::path::PathBuf::from(&path),
            source,
        })?;
        Self::document(&text, &path)
    }
}

/// The DynamoDB table every function shares.
pub const TABLE_NAME_VAR: &str = "TABLE_NAME";
/// How long history is kept (`90d`, `30d`, …): the snapshot writes with
/// it, the dashboards refuse to rebuild further back.
pub const HISTORY_TTL_VAR: &str = "HISTORY_TTL";
pub const DEFAULT_HISTORY_TTL: Duration = Duration::from_secs(90 * 86_400);

/// [`HISTORY_TTL_VAR`], or the default.
pub fn history_ttl(vars: Lookup<'_>) -> Result<Duration, ConfigError> {
    match vars(HISTORY_TTL_VAR) {
        None => Ok(DEFAULT_HISTORY_TTL),
        Some(text) => parse_duration(&text)
            .map_err(|message| ConfigError::BadVar { name: HISTORY_TTL_VAR, message }),
    }
}

/// Where settings come from: the process environment in production, a map
/// in tests (changing the real environment is `unsafe` and racy).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub fn required(vars: Lookup<'_>, name: &'static str) -> Result<String, ConfigError> {
    match vars(name) {
        Some(value) if !value.trim().is_empty() => Ok(value),
        Some(_) => Err(ConfigError::BadVar { name, message: "must not be empty".into() }),
        None => Err(ConfigError::MissingVar { name }),
    }
}

/// Where the functions keep their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub table_name: String,
}

impl StoreSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&process_env)
    }

    pub fn from_vars(vars: Lookup<'_>) -> Result<Self, ConfigError> {
        let table_name = required(vars, TABLE_NAME_VAR)?;
        // DynamoDB's rule: 3-255 of [A-Za-z0-9_.-].
        let valid = (3..=255).contains(&table_name.len())
            && table_name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            return Err(ConfigError::BadVar {
                name: TABLE_NAME_VAR,
                message: "must be 3 to 255 characters of letters, digits, '_', '.' and '-'".into(),
            });
        }
        Ok(Self { table_name })
    }
}

/// The settings of a function that reads the fleet and the table
/// (snapshot, inventory, dashboards).
#[derive(Debug)]
pub struct FleetSettings {
    pub store: StoreSettings,
    /// The configuration as deployed: the seed of the stored one.
    pub fleet: FleetConfig,
    /// The same, as a document in the file format.
    pub seed: serde_json::Value,
}

impl FleetSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&process_env)
    }

    pub fn from_vars(vars: Lookup<'_>) -> Result<Self, ConfigError> {
        let (seed, fleet) = FleetConfig::seed_from_vars(vars)?;
        Ok(Self { store: StoreSettings::from_vars(vars)?, fleet, seed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_table_name_is_required_and_checked() {
        let ok =
            StoreSettings::from_vars(&vars(&[("TABLE_NAME", "release-dashboard-dev")])).unwrap();
        assert_eq!(ok.table_name, "release-dashboard-dev");
        let missing = StoreSettings::from_vars(&vars(&[])).unwrap_err();
        assert_eq!(missing.to_string(), "environment variable TABLE_NAME is not set");
        let empty = StoreSettings::from_vars(&vars(&[("TABLE_NAME", " ")])).unwrap_err();
        assert!(empty.to_string().contains("must not be empty"));
        let bad =
            StoreSettings::from_vars(&vars(&[("TABLE_NAME", "no spaces allowed")])).unwrap_err();
        assert!(bad.to_string().starts_with("environment variable TABLE_NAME:"), "{bad}");
    }
}
