//! Version policies as configured: the rules a dashboard's consecutive
//! columns (earlier → later) are judged by, and the overrides that change
//! them for some services. What a rule concludes is evaluated with the
//! matrix (the dashboards function); this module only says which rules hold
//! for a service and with which bounds.
//!
//! ```yaml
//! policies:
//!   maxLagReleases: 3        # the later column at most 3 releases behind
//!   maxLagAge: 3d            # a newer version waits at most 3 days
//!   minSoak: 24h             # ran ready in the earlier column ≥ 24 h first
//!   promotionPath: strict    # never a version the earlier column never ran
//!   noDigestDrift: true
//!   maxRolloutDuration: 30m
//!   maxStaleness: 15m        # per column
//!   overrides:               # in order; a later one wins, `off` turns a rule off
//!     - service: "ledger-*"
//!       minSoak: 48h
//!     - selector: tier=experimental
//!       maxLagAge: off
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::labels::LabelSelector;

/// The longest bound a duration rule takes.
const MAX_BOUND: Duration = Duration::from_secs(365 * 86_400);
/// The most releases a lag may be counted in.
const MAX_RELEASES: u32 = 1000;
/// The longest service-name pattern (a Kubernetes name is at most 253).
const MAX_PATTERN_BYTES: usize = 253;

/// Every rule, by its configuration name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Rule {
    MaxLagReleases,
    MaxLagAge,
    MinSoak,
    PromotionPath,
    NoDigestDrift,
    MaxRolloutDuration,
    MaxStaleness,
}

impl Rule {
    pub const ALL: [Self; 7] = [
        Self::MaxLagReleases,
        Self::MaxLagAge,
        Self::MinSoak,
        Self::PromotionPath,
        Self::NoDigestDrift,
        Self::MaxRolloutDuration,
        Self::MaxStaleness,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MaxLagReleases => "maxLagReleases",
            Self::MaxLagAge => "maxLagAge",
            Self::MinSoak => "minSoak",
            Self::PromotionPath => "promotionPath",
            Self::NoDigestDrift => "noDigestDrift",
            Self::MaxRolloutDuration => "maxRolloutDuration",
            Self::MaxStaleness => "maxStaleness",
        }
    }
}

/// The rules in force for one service: a rule that is `None` is off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rules {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lag_releases: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub max_lag_age: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub min_soak: Option<Duration>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub promotion_path_strict: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_digest_drift: bool,
    #[serde(skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub max_rollout_duration: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub max_staleness: Option<Duration>,
}

impl Rules {
    /// The rules that are on, in [`Rule::ALL`] order.
    pub fn enabled(&self) -> Vec<Rule> {
        Rule::ALL.into_iter().filter(|rule| self.is_on(*rule)).collect()
    }

    pub fn is_on(&self, rule: Rule) -> bool {
        match rule {
            Rule::MaxLagReleases => self.max_lag_releases.is_some(),
            Rule::MaxLagAge => self.max_lag_age.is_some(),
            Rule::MinSoak => self.min_soak.is_some(),
            Rule::PromotionPath => self.promotion_path_strict,
            Rule::NoDigestDrift => self.no_digest_drift,
            Rule::MaxRolloutDuration => self.max_rollout_duration.is_some(),
            Rule::MaxStaleness => self.max_staleness.is_some(),
        }
    }

    /// These rules with what `layer` sets put over them.
    fn with(mut self, layer: &Layer) -> Self {
        fn over<T: Copy>(mine: &mut Option<T>, set: Option<Setting<T>>) {
            if let Some(setting) = set {
                *mine = setting.on();
            }
        }
        over(&mut self.max_lag_releases, layer.max_lag_releases);
        over(&mut self.max_lag_age, layer.max_lag_age);
        over(&mut self.min_soak, layer.min_soak);
        over(&mut self.max_rollout_duration, layer.max_rollout_duration);
        over(&mut self.max_staleness, layer.max_staleness);
        if let Some(path) = layer.promotion_path {
            self.promotion_path_strict = path == PromotionPath::Strict;
        }
        if let Some(on) = layer.no_digest_drift {
            self.no_digest_drift = on;
        }
        self
    }
}

/// A dashboard's policies: its rules and the overrides for some services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    base: Layer,
    overrides: Vec<Override>,
}

impl Policies {
    /// No rule at all (a dashboard without `policies`).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.base == Layer::default() && self.overrides.is_empty()
    }

    /// The rules for the service `service` whose workloads carry `labels`:
    /// the dashboard's, then every override that matches, in order.
    pub fn for_service(&self, service: &str, labels: &BTreeMap<String, String>) -> Rules {
        let base = Rules::default().with(&self.base);
        let matching = self.overrides.iter().filter(|o| o.applies_to(service, labels));
        matching.fold(base, |rules, o| rules.with(&o.layer))
    }

    /// Reads and checks a dashboard's `policies`; each problem names its
    /// key below `at`.
    pub fn from_raw(raw: RawPolicies, at: &str, problems: &mut Vec<(String, String)>) -> Self {
        raw.base.check(at, problems);
        let mut overrides = Vec::with_capacity(raw.overrides.len());
        for (i, o) in raw.overrides.into_iter().enumerate() {
            let at = format!("{at}.overrides[{i}]");
            o.layer.check(&at, problems);
            let target = match (o.service, o.selector) {
                (Some(pattern), None) => match NamePattern::parse(&pattern) {
                    Ok(pattern) => Target::Service(pattern),
                    Err(message) => {
                        problems.push((format!("{at}.service"), message.to_owned()));
                        continue;
                    }
                },
                (None, Some(selector)) => Target::Labels(selector),
                _ => {
                    let message = "needs exactly one of service (a name pattern) or selector";
                    problems.push((at, message.to_owned()));
                    continue;
                }
            };
            overrides.push(Override { target, layer: o.layer });
        }
        Self { base: raw.base, overrides }
    }
}

/// Which services an override is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Service(NamePattern),
    Labels(LabelSelector),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Override {
    target: Target,
    layer: Layer,
}

impl Override {
    fn applies_to(&self, service: &str, labels: &BTreeMap<String, String>) -> bool {
        match &self.target {
            Target::Service(pattern) => pattern.matches(service),
            Target::Labels(selector) => selector.matches(labels),
        }
    }
}

/// A service name, or a pattern in which `*` stands for any run of
/// characters (`ledger-*`, `*-api`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NamePattern(String);

impl NamePattern {
    fn parse(text: &str) -> Result<Self, &'static str> {
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._*".contains(c);
        if text.is_empty() || text.len() > MAX_PATTERN_BYTES || !text.chars().all(valid) {
            return Err(
                "must be a service name, with * for any characters (1-253 of a-z 0-9 - . _ *)",
            );
        }
        Ok(Self(text.to_owned()))
    }

    fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = name.strip_prefix(first) else { return false };
        let mut parts: Vec<&str> = parts.collect();
        let Some(last) = parts.pop() else { return rest.is_empty() };
        for part in parts {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// `promotionPath`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
enum PromotionPath {
    Strict,
    Off,
}

/// A bounded rule's setting: its bound, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting<T> {
    On(T),
    Off,
}

impl<T> Setting<T> {
    fn on(self) -> Option<T> {
        match self {
            Self::On(bound) => Some(bound),
            Self::Off => None,
        }
    }
}

/// One layer of settings: the dashboard's, or an override's. A rule a
/// layer does not mention keeps what the layers before it said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Layer {
    #[serde(default, deserialize_with = "releases")]
    max_lag_releases: Option<Setting<u32>>,
    #[serde(default, deserialize_with = "bound")]
    max_lag_age: Option<Setting<Duration>>,
    #[serde(default, deserialize_with = "bound")]
    min_soak: Option<Setting<Duration>>,
    promotion_path: Option<PromotionPath>,
    no_digest_drift: Option<bool>,
    #[serde(default, deserialize_with = "bound")]
    max_rollout_duration: Option<Setting<Duration>>,
    #[serde(default, deserialize_with = "bound")]
    max_staleness: Option<Setting<Duration>>,
}

impl Layer {
    fn check(&self, at: &str, problems: &mut Vec<(String, String)>) {
        let durations = [
            (Rule::MaxLagAge, self.max_lag_age),
            (Rule::MinSoak, self.min_soak),
            (Rule::MaxRolloutDuration, self.max_rollout_duration),
            (Rule::MaxStaleness, self.max_staleness),
        ];
        for (rule, setting) in durations {
            if let Some(Setting::On(bound)) = setting
                && (bound.is_zero() || bound > MAX_BOUND)
            {
                let message = "must be more than 0 and at most 365d (or off)";
                problems.push((format!("{at}.{}", rule.name()), message.to_owned()));
            }
        }
        if let Some(Setting::On(releases)) = self.max_lag_releases
            && releases > MAX_RELEASES
        {
            let message = format!("must be at most {MAX_RELEASES} (or off)");
            problems.push((format!("{at}.{}", Rule::MaxLagReleases.name()), message));
        }
    }
}

/// `policies` as written: a layer and its overrides.
#[derive(Debug, Default)]
pub struct RawPolicies {
    base: Layer,
    overrides: Vec<RawOverride>,
}

#[derive(Debug)]
struct RawOverride {
    service: Option<String>,
    selector: Option<LabelSelector>,
    layer: Layer,
}

/// The keys beside a layer's rules are taken out first, so that the rules
/// are read with unknown keys refused (serde's `flatten` would let them
/// pass).
impl<'de> Deserialize<'de> for RawPolicies {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut map = serde_json::Map::deserialize(de)?;
        let overrides = match map.remove("overrides") {
            None => Vec::new(),
            Some(list) => Vec::<serde_json::Map<String, serde_json::Value>>::deserialize(list)
                .map_err(|e| D::Error::custom(format!("overrides: {e}")))?
                .into_iter()
                .enumerate()
                .map(|(i, o)| RawOverride::from_map(o).map_err(|e| format!("overrides[{i}]: {e}")))
                .collect::<Result<_, _>>()
                .map_err(D::Error::custom)?,
        };
        let base = Layer::deserialize(serde_json::Value::Object(map)).map_err(D::Error::custom)?;
        Ok(Self { base, overrides })
    }
}

impl RawOverride {
    fn from_map(mut map: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let mut text = |key: &str| match map.remove(key) {
            None => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(format!("{key}: must be a string")),
        };
        let service = text("service")?;
        let selector = text("selector")?
            .map(|s| LabelSelector::parse(&s).map_err(|e| format!("selector: {e}")))
            .transpose()?;
        let layer =
            Layer::deserialize(serde_json::Value::Object(map)).map_err(|e| e.to_string())?;
        Ok(Self { service, selector, layer })
    }
}

/// A number of releases, or `off`.
fn releases<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Setting<u32>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Count(u32),
        Word(String),
    }
    match Text::deserialize(de)? {
        Text::Count(n) => Ok(Some(Setting::On(n))),
        Text::Word(w) if w == "off" => Ok(Some(Setting::Off)),
        Text::Word(w) => Err(serde::de::Error::custom(format!(
            "invalid value {w:?}: expected a number of releases or off"
        ))),
    }
}

/// A duration (`90`, `15m`, `24h`, `3d`), or `off`.
fn bound<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Setting<Duration>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Seconds(u64),
        Word(String),
    }
    match Text::deserialize(de)? {
        Text::Seconds(s) => Ok(Some(Setting::On(Duration::from_secs(s)))),
        Text::Word(w) if w == "off" => Ok(Some(Setting::Off)),
        Text::Word(w) => crate::domain::parse_duration(&w)
            .map(|d| Some(Setting::On(d)))
            .map_err(serde::de::Error::custom),
    }
}

/// Bounds are shown as whole seconds in API output.
mod seconds_opt {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_secs()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> (Policies, Vec<(String, String)>) {
        let raw: RawPolicies = serde_norway::from_str(yaml).expect("policies parse");
        let mut problems = Vec::new();
        let policies = Policies::from_raw(raw, "dashboards[0].policies", &mut problems);
        (policies, problems)
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn every_rule_reads_with_its_bound() {
        let (policies, problems) = read(
            "maxLagReleases: 3\nmaxLagAge: 3d\nminSoak: 24h\npromotionPath: strict\nnoDigestDrift: true\nmaxRolloutDuration: 30m\nmaxStaleness: 900\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let rules = policies.for_service("api", &BTreeMap::new());
        assert_eq!(
            rules,
            Rules {
                max_lag_releases: Some(3),
                max_lag_age: Some(Duration::from_secs(3 * 86_400)),
                min_soak: Some(Duration::from_secs(24 * 3600)),
                promotion_path_strict: true,
                no_digest_drift: true,
                max_rollout_duration: Some(Duration::from_secs(1800)),
                max_staleness: Some(Duration::from_secs(900)),
            }
        );
        assert_eq!(rules.enabled(), Rule::ALL);
        assert!(Policies::none().for_service("api", &BTreeMap::new()).enabled().is_empty());
    }

    #[test]
    fn overrides_apply_in_order_by_name_pattern_or_label_and_off_turns_a_rule_off() {
        let (policies, problems) = read(
            "minSoak: 24h\nmaxLagAge: 3d\noverrides:\n  - service: ledger-*\n    minSoak: 48h\n  - selector: tier=experimental\n    maxLagAge: off\n    minSoak: 1h\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let none = BTreeMap::new();
        let experimental = labels(&[("tier", "experimental")]);
        let hours = |h: u64| Some(Duration::from_secs(h * 3600));
        assert_eq!(policies.for_service("cart", &none).min_soak, hours(24));
        assert_eq!(policies.for_service("ledger-api", &none).min_soak, hours(48));
        assert_eq!(
            policies.for_service("ledger", &none).min_soak,
            hours(24),
            "ledger-* needs the dash"
        );
        let both = policies.for_service("ledger-api", &experimental);
        assert_eq!((both.min_soak, both.max_lag_age), (hours(1), None), "the later override wins");
        assert_eq!(policies.for_service("cart", &none).max_lag_age, hours(72));
    }

    #[test]
    fn name_patterns_match_whole_names() {
        let pattern = |p: &str| NamePattern::parse(p).unwrap();
        assert!(pattern("api").matches("api") && !pattern("api").matches("api-2"));
        assert!(
            pattern("*-api").matches("ledger-api") && !pattern("*-api").matches("ledger-api-v2")
        );
        assert!(pattern("a*b*c").matches("a-b-c") && pattern("a*b*c").matches("abc"));
        assert!(!pattern("a*b*c").matches("a-c-b") && !pattern("ab*ba").matches("aba"));
        assert!(pattern("*").matches("anything"));
        for bad in ["", "Ledger", "ledger api", "a/b", &"a".repeat(254)] {
            assert!(NamePattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_settings_are_problems_at_their_key() {
        let (_, problems) = read(
            "minSoak: 0\nmaxStaleness: 400d\nmaxLagReleases: 5000\noverrides:\n  - {service: Bad Name, minSoak: 1h}\n  - {minSoak: 1h}\n  - {service: a, selector: x=y}\n",
        );
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "dashboards[0].policies.minSoak",
                "dashboards[0].policies.maxStaleness",
                "dashboards[0].policies.maxLagReleases",
                "dashboards[0].policies.overrides[0].service",
                "dashboards[0].policies.overrides[1]",
                "dashboards[0].policies.overrides[2]",
            ]
        );
        for (yaml, says) in [
            ("minSoak: soon\n", "invalid duration"),
            ("maxLagReleases: many\n", "a number of releases or off"),
            ("promotionPath: loose\n", "unknown variant"),
            ("minSoke: 1h\n", "unknown field"),
        ] {
            let err = serde_norway::from_str::<RawPolicies>(yaml).unwrap_err().to_string();
            assert!(err.contains(says), "{yaml}: {err}");
        }
    }
}
