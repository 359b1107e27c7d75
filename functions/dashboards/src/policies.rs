//! Judging a matrix row by its dashboard's policies (`shared::policy`):
//! each rule on each pair of consecutive columns (earlier → later), or on
//! each column for the rules about one column, is a pass, a fail or
//! unknown (the record cannot say), with a reason and, where known, since
//! when. Pure, like the matrix: decided from what runs and what the
//! sightings recorded, nothing else.

use std::cmp::Ordering;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use shared::freshness::Freshness;
use shared::policy::{Policies, Rule, Rules};

use crate::compare::semantic;
use crate::matrix::{Cell, ImageView, Ran, Row, Sightings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Pass,
    Fail,
    Unknown,
}

/// One rule's verdict on one column pair (or one column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    #[schema(value_type = String)]
    pub rule: Rule,
    /// The earlier column of the pair; none for a rule on one column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    pub result: Outcome,
    pub reason: String,
    /// Since when the result has held, where the record says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

/// What a row is judged against: its columns' names and freshness, the
/// sightings, and now.
pub struct Context<'a> {
    pub environments: &'a [&'a str],
    pub freshness: &'a [Freshness],
    pub sightings: &'a Sightings,
    pub now: Timestamp,
}

/// One line of a dashboard's policy report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportLine {
    pub service: String,
    #[serde(flatten)]
    #[schema(inline)]
    pub judgement: Judgement,
}

/// How many lines of a report passed, failed or could not be judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tally {
    pub pass: u32,
    pub fail: u32,
    pub unknown: u32,
}

impl Tally {
    pub fn of<'a>(lines: impl IntoIterator<Item = &'a ReportLine>) -> Self {
        let mut tally = Self::default();
        for line in lines {
            match line.judgement.result {
                Outcome::Pass => tally.pass += 1,
                Outcome::Fail => tally.fail += 1,
                Outcome::Unknown => tally.unknown += 1,
            }
        }
        tally
    }
}

/// Every row judged by the rules `policies` give its service: rows in
/// order, each row's judgements in rule order, then column order.
pub fn report<'a>(
    rows: impl IntoIterator<Item = &'a Row>,
    policies: &Policies,
    context: &Context<'_>,
) -> Vec<ReportLine> {
    let mut lines = Vec::new();
    for row in rows {
        let rules = policies.for_service(&row.service, &row.labels);
        for judgement in judge(row, &rules, context) {
            lines.push(ReportLine { service: row.service.clone(), judgement });
        }
    }
    lines
}

/// Every rule of `rules` that is on, on every column pair (or column) of
/// `row`.
pub fn judge(row: &Row, rules: &Rules, context: &Context<'_>) -> Vec<Judgement> {
    let mut out = Vec::new();
    let envs = context.environments;
    for rule in rules.enabled() {
        match rule {
            Rule::MaxStaleness | Rule::MaxRolloutDuration => {
                for (i, to) in envs.iter().enumerate() {
                    let cell = row.cells.get(i).and_then(Option::as_ref);
                    let (result, reason, since) = match rule {
                        Rule::MaxStaleness => match context.freshness.get(i) {
                            Some(column) => staleness(cell, column, rules, context),
                            None => unknown("no freshness known for this column".into()),
                        },
                        _ => rollout(cell, rules, context),
                    };
                    out.push(Judgement {
                        rule,
                        from: None,
                        to: (*to).to_owned(),
                        result,
                        reason,
                        since,
                    });
                }
            }
            _ => {
                for (i, pair) in envs.windows(2).enumerate() {
                    let pair = Pair {
                        service: &row.service,
                        earlier: pair[0],
                        later: pair[1],
                        earlier_cell: row.cells.get(i).and_then(Option::as_ref),
                        later_cell: row.cells.get(i + 1).and_then(Option::as_ref),
                    };
                    let (result, reason, since) = pair.judge(rule, rules, context);
                    out.push(Judgement {
                        rule,
                        from: Some(pair.earlier.to_owned()),
                        to: pair.later.to_owned(),
                        result,
                        reason,
                        since,
                    });
                }
            }
        }
    }
    out
}

type Verdict = (Outcome, String, Option<Timestamp>);

fn unknown(reason: String) -> Verdict {
    (Outcome::Unknown, reason, None)
}

/// Whole days, hours or minutes, as a person reads a wait.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `1 release`, `2 releases`.
fn releases(n: usize) -> String {
    if n == 1 { "1 release".into() } else { format!("{n} releases") }
}

fn between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::from_secs(u64::try_from(to.as_second() - from.as_second()).unwrap_or(0))
}

fn plus(at: Timestamp, d: Duration) -> Option<Timestamp> {
    at.checked_add(jiff::SignedDuration::from_secs(i64::try_from(d.as_secs()).ok()?)).ok()
}

fn staleness(
    cell: Option<&Cell>,
    column: &Freshness,
    rules: &Rules,
    context: &Context<'_>,
) -> Verdict {
    let (Some(bound), Some(_)) = (rules.max_staleness, cell) else {
        return unknown("does not run here".into());
    };
    let Some(last) = column.last_success else {
        return (Outcome::Fail, "never snapshotted".into(), None);
    };
    let age = between(last, context.now);
    if age > bound {
        (Outcome::Fail, format!("data is {} old > {}", span(age), span(bound)), plus(last, bound))
    } else {
        (Outcome::Pass, format!("data is {} old ≤ {}", span(age), span(bound)), None)
    }
}

fn rollout(cell: Option<&Cell>, rules: &Rules, context: &Context<'_>) -> Verdict {
    let (Some(bound), Some(cell)) = (rules.max_rollout_duration, cell) else {
        return unknown("does not run here".into());
    };
    if !cell.rolling {
        return (Outcome::Pass, "no rollout in progress".into(), None);
    }
    let started = cell.last_change;
    let took = between(started, context.now);
    if took > bound {
        let reason = format!("rolling out for {} > {}", span(took), span(bound));
        (Outcome::Fail, reason, plus(started, bound))
    } else {
        (Outcome::Pass, format!("rolling out for {} ≤ {}", span(took), span(bound)), None)
    }
}

/// One consecutive column pair of a row.
struct Pair<'a> {
    service: &'a str,
    earlier: &'a str,
    later: &'a str,
    earlier_cell: Option<&'a Cell>,
    later_cell: Option<&'a Cell>,
}

impl Pair<'_> {
    fn judge(&self, rule: Rule, rules: &Rules, context: &Context<'_>) -> Verdict {
        let Some(later_cell) = self.later_cell else {
            return unknown(format!("does not run in {}", self.later));
        };
        match rule {
            Rule::PromotionPath => self.promotion_path(later_cell, context),
            Rule::NoDigestDrift => self.digest_drift(later_cell),
            Rule::MinSoak => self.soak(later_cell, rules.min_soak.unwrap_or_default(), context),
            Rule::MaxLagReleases | Rule::MaxLagAge => self.lag(rule, later_cell, rules, context),
            Rule::MaxStaleness | Rule::MaxRolloutDuration => unknown("a rule on one column".into()),
        }
    }

    fn ran(&self, version: &str, context: &Context<'_>) -> Ran {
        let runs = self.earlier_cell.is_some_and(|c| c.versions.iter().any(|v| v == version));
        context.sightings.ran_before(self.earlier, runs, self.later, self.service, version)
    }

    fn promotion_path(&self, later_cell: &Cell, context: &Context<'_>) -> Verdict {
        let (mut never, mut unknowns) = (Vec::new(), Vec::new());
        for version in &later_cell.versions {
            match self.ran(version, context) {
                Ran::Yes { .. } => {}
                Ran::Never { since } => never.push((version.as_str(), since)),
                Ran::Unknown => unknowns.push(version.as_str()),
            }
        }
        if let Some(since) = never.iter().map(|(_, at)| *at).min() {
            let versions: Vec<&str> = never.iter().map(|(v, _)| *v).collect();
            let reason = format!("{} never ran in {}", versions.join(", "), self.earlier);
            return (Outcome::Fail, reason, Some(since));
        }
        if !unknowns.is_empty() {
            return unknown(format!(
                "{} ran before the record of {} began",
                unknowns.join(", "),
                self.earlier
            ));
        }
        (Outcome::Pass, format!("every version ran in {} first", self.earlier), None)
    }

    fn digest_drift(&self, later_cell: &Cell) -> Verdict {
        let Some(earlier_cell) = self.earlier_cell else {
            return unknown(format!("does not run in {}", self.earlier));
        };
        let differs = |image: &&ImageView| {
            image.digest.is_some()
                && earlier_cell.images.iter().any(|e| {
                    e.image == image.image && e.digest.is_some() && e.digest != image.digest
                })
        };
        if let Some(image) = later_cell.images.iter().find(differs) {
            let reason = format!(
                "{} is a different image in {} than in {}",
                image.image, self.later, self.earlier
            );
            return (Outcome::Fail, reason, Some(later_cell.last_change));
        }
        (Outcome::Pass, "the same tags have the same digests".into(), None)
    }

    fn soak(&self, later_cell: &Cell, bound: Duration, context: &Context<'_>) -> Verdict {
        let mut worst: Option<Verdict> = None;
        for version in &later_cell.versions {
            let verdict = match (
                self.ran(version, context),
                context.sightings.first_seen(self.later, self.service, version),
            ) {
                (Ran::Yes { since: Some(earlier) }, Some(later)) => {
                    let soaked = between(earlier, later);
                    if soaked >= bound {
                        let reason = format!(
                            "{version} ran in {} for {} ≥ {} first",
                            self.earlier,
                            span(soaked),
                            span(bound)
                        );
                        (Outcome::Pass, reason, None)
                    } else {
                        let reason = format!(
                            "{version} reached {} after {} in {} < {}",
                            self.later,
                            span(soaked),
                            self.earlier,
                            span(bound)
                        );
                        (Outcome::Fail, reason, Some(later))
                    }
                }
                (Ran::Never { since }, _) => {
                    let reason = format!("{version} never ran in {}", self.earlier);
                    (Outcome::Fail, reason, Some(since))
                }
                _ => unknown(format!("no record of when {version} ran in both")),
            };
            let rank = |o: Outcome| match o {
                Outcome::Fail => 2,
                Outcome::Unknown => 1,
                Outcome::Pass => 0,
            };
            if worst.as_ref().is_none_or(|w| rank(verdict.0) > rank(w.0)) {
                worst = Some(verdict);
            }
        }
        worst.unwrap_or_else(|| unknown("no version".into()))
    }

    /// The releases the earlier column ran that are newer than the
    /// later's newest, oldest first, with when the earlier one took each.
    fn ahead(&self, later_cell: &Cell, context: &Context<'_>) -> Vec<(String, Timestamp)> {
        let seen = |v: &str| {
            let earlier = context.sightings.first_seen(self.earlier, self.service, v);
            let later = context.sightings.first_seen(self.later, self.service, v);
            earlier.into_iter().chain(later).min()
        };
        let newer = |a: &str, b: &str| -> Ordering {
            match (semantic(a), semantic(b)) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => seen(a).cmp(&seen(b)),
            }
        };
        let Some(current) = later_cell.versions.iter().max_by(|a, b| newer(a, b)) else {
            return Vec::new();
        };
        let mut ahead: Vec<(String, Timestamp)> = context
            .sightings
            .versions(self.earlier, self.service)
            .into_iter()
            .filter(|(v, _)| newer(v, current) == Ordering::Greater)
            .map(|(v, at)| (v.to_owned(), at))
            .collect();
        ahead.sort_by_key(|(_, at)| *at);
        ahead
    }

    fn lag(&self, rule: Rule, later_cell: &Cell, rules: &Rules, context: &Context<'_>) -> Verdict {
        if context.sightings.watched_since(self.earlier).is_none() {
            return unknown(format!("no record of {} yet", self.earlier));
        }
        let ahead = self.ahead(later_cell, context);
        if rule == Rule::MaxLagReleases {
            let bound = rules.max_lag_releases.unwrap_or_default();
            let behind = ahead.len();
            let newest = ahead.last().map_or("", |(v, _)| v.as_str());
            return match ahead.get(bound as usize) {
                Some((_, since)) => {
                    let reason = format!(
                        "{} behind {} (newest {newest}) > {bound}",
                        releases(behind),
                        self.earlier
                    );
                    (Outcome::Fail, reason, Some(*since))
                }
                None => {
                    let reason = format!("{} behind {} ≤ {bound}", releases(behind), self.earlier);
                    (Outcome::Pass, reason, None)
                }
            };
        }
        let bound = rules.max_lag_age.unwrap_or_default();
        let Some((oldest, since)) = ahead.first() else {
            return (Outcome::Pass, format!("nothing newer waits in {}", self.earlier), None);
        };
        let waited = between(*since, context.now);
        if waited > bound {
            let reason = format!(
                "{oldest} has waited in {} for {} > {}",
                self.earlier,
                span(waited),
                span(bound)
            );
            (Outcome::Fail, reason, plus(*since, bound))
        } else {
            let reason = format!(
                "{oldest} has waited in {} for {} ≤ {}",
                self.earlier,
                span(waited),
                span(bound)
            );
            (Outcome::Pass, reason, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use shared::policy::Policies;

    use super::*;
    use crate::matrix::Flags;

    const T0: &str = "2026-11-01T00:00:00Z";

    fn at(hours: i64) -> Timestamp {
        T0.parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_hours(hours)
    }

    fn fresh(hours_ago: i64, now: Timestamp) -> Freshness {
        Freshness {
            last_success: Some(now - jiff::SignedDuration::from_hours(hours_ago)),
            age_seconds: Some(hours_ago * 3600),
            last_attempt_failed: false,
            stale: false,
        }
    }

    fn cell(versions: &[&str], images: &[(&str, &str)], rolling_since: Option<Timestamp>) -> Cell {
        Cell {
            versions: versions.iter().map(|v| (*v).to_owned()).collect(),
            images: images
                .iter()
                .map(|(i, d)| ImageView { image: (*i).to_owned(), digest: Some((*d).to_owned()) })
                .collect(),
            placements: Vec::new(),
            ready: 1,
            desired: 1,
            rolling: rolling_since.is_some(),
            last_change: rolling_since.unwrap_or(at(0)),
            freshness: fresh(0, at(96)),
            clusters: vec![0],
        }
    }

    /// stg took cart 1.0.0 (found at its first snapshot), then 1.1.0 after
    /// a day, 1.2.0 after two and 1.3.0 after three; prod took 1.1.0 two
    /// hours after stg did, and 9.9.9 that stg never ran; 0.9.0 ran in
    /// prod before the record began.
    fn sightings() -> Sightings {
        let mut s = Sightings::default();
        let stg = [("cart", "1.0.0", at(0)), ("cart", "1.1.0", at(24)), ("cart", "1.2.0", at(48))];
        let stg: Vec<_> = stg.into_iter().chain([("cart", "1.3.0", at(72))]).collect();
        s.record_cluster("stg", stg.iter().copied());
        let prod = [
            ("cart", "1.0.0", at(0)),
            ("cart", "0.9.0", at(0)),
            ("cart", "1.1.0", at(26)),
            ("cart", "9.9.9", at(80)),
        ];
        s.record_cluster("prod", prod.iter().copied());
        s
    }

    fn verdicts(rules: &str, prod: Cell) -> Vec<(Rule, Outcome, String, Option<Timestamp>)> {
        let config: serde_json::Value = serde_norway::from_str(rules).unwrap();
        let raw = serde_json::from_value(config).unwrap();
        let mut problems = Vec::new();
        let rules =
            Policies::from_raw(raw, "p", &mut problems).for_service("cart", &BTreeMap::new());
        assert!(problems.is_empty(), "{problems:?}");
        let row = Row {
            service: "cart".into(),
            cells: vec![Some(cell(&["1.3.0"], &[("r/cart:1.3.0", "sha256:aa")], None)), Some(prod)],
            flags: Flags::default(),
            labels: BTreeMap::new(),
        };
        let sightings = sightings();
        let now = at(96);
        let freshness = [fresh(0, now), fresh(2, now)];
        let context = Context {
            environments: &["stg", "prod"],
            freshness: &freshness,
            sightings: &sightings,
            now,
        };
        judge(&row, &rules, &context)
            .into_iter()
            .filter(|j| j.to == "prod")
            .map(|j| (j.rule, j.result, j.reason, j.since))
            .collect()
    }

    fn prod(versions: &[&str]) -> Cell {
        cell(versions, &[], None)
    }

    #[test]
    fn lag_in_releases_counts_what_the_earlier_column_ran_since() {
        let fail = verdicts("maxLagReleases: 1", prod(&["1.1.0"]));
        assert_eq!(
            fail,
            [(
                Rule::MaxLagReleases,
                Outcome::Fail,
                "2 releases behind stg (newest 1.3.0) > 1".to_owned(),
                Some(at(72))
            )]
        );
        let pass = verdicts("maxLagReleases: 2", prod(&["1.1.0"]));
        assert_eq!((pass[0].1, pass[0].2.as_str()), (Outcome::Pass, "2 releases behind stg ≤ 2"));
        let level = verdicts("maxLagReleases: 0", prod(&["1.3.0"]));
        assert_eq!(level[0].1, Outcome::Pass, "{level:?}");
    }

    #[test]
    fn lag_in_age_is_how_long_the_oldest_newer_release_has_waited() {
        let fail = verdicts("maxLagAge: 1d", prod(&["1.1.0"]));
        assert_eq!(
            fail,
            [(
                Rule::MaxLagAge,
                Outcome::Fail,
                "1.2.0 has waited in stg for 2d > 1d".to_owned(),
                Some(at(72))
            )]
        );
        assert_eq!(verdicts("maxLagAge: 3d", prod(&["1.1.0"]))[0].1, Outcome::Pass);
        assert_eq!(verdicts("maxLagAge: 1h", prod(&["1.3.0"]))[0].1, Outcome::Pass);
    }

    #[test]
    fn soak_is_the_time_between_the_earlier_column_taking_a_version_and_the_later() {
        let fail = verdicts("minSoak: 24h", prod(&["1.1.0"]));
        assert_eq!(
            fail,
            [(
                Rule::MinSoak,
                Outcome::Fail,
                "1.1.0 reached prod after 2h in stg < 1d".to_owned(),
                Some(at(26))
            )]
        );
        let pass = verdicts("minSoak: 1h", prod(&["1.1.0"]));
        assert_eq!(
            (pass[0].1, pass[0].2.as_str()),
            (Outcome::Pass, "1.1.0 ran in stg for 2h ≥ 1h first")
        );
    }

    #[test]
    fn the_promotion_path_fails_on_a_skipped_column_and_cannot_judge_before_the_record() {
        let skipped = verdicts("promotionPath: strict", prod(&["9.9.9"]));
        assert_eq!(
            skipped,
            [(
                Rule::PromotionPath,
                Outcome::Fail,
                "9.9.9 never ran in stg".to_owned(),
                Some(at(80))
            )]
        );
        assert_eq!(verdicts("promotionPath: strict", prod(&["1.1.0"]))[0].1, Outcome::Pass);
        let before = verdicts("promotionPath: strict", prod(&["0.9.0"]));
        assert_eq!(
            (before[0].1, before[0].2.as_str()),
            (Outcome::Unknown, "0.9.0 ran before the record of stg began")
        );
    }

    #[test]
    fn digests_rollouts_and_staleness() {
        let same = cell(&["1.3.0"], &[("r/cart:1.3.0", "sha256:aa")], None);
        assert_eq!(verdicts("noDigestDrift: true", same)[0].1, Outcome::Pass);
        let repushed = cell(&["1.3.0"], &[("r/cart:1.3.0", "sha256:bb")], None);
        let drift = verdicts("noDigestDrift: true", repushed);
        assert_eq!(
            (drift[0].1, drift[0].2.as_str()),
            (Outcome::Fail, "r/cart:1.3.0 is a different image in prod than in stg")
        );

        let stuck = cell(&["1.1.0", "1.3.0"], &[], Some(at(95)));
        let rollout = verdicts("maxRolloutDuration: 30m", stuck.clone());
        assert_eq!(
            rollout,
            [(
                Rule::MaxRolloutDuration,
                Outcome::Fail,
                "rolling out for 1h > 30m".to_owned(),
                Some(at(95) + jiff::SignedDuration::from_mins(30))
            )]
        );
        assert_eq!(verdicts("maxRolloutDuration: 2h", stuck)[0].1, Outcome::Pass);

        let mut old = prod(&["1.3.0"]);
        old.freshness = fresh(2, at(96));
        let stale = verdicts("maxStaleness: 1h", old.clone());
        assert_eq!(
            stale,
            [(Rule::MaxStaleness, Outcome::Fail, "data is 2h old > 1h".to_owned(), Some(at(95)))]
        );
        assert_eq!(verdicts("maxStaleness: 3h", old)[0].1, Outcome::Pass);
    }

    #[test]
    fn a_service_missing_from_a_column_is_unknown_there() {
        let policies = "{maxLagReleases: 1, promotionPath: strict}";
        let config: serde_json::Value = serde_norway::from_str(policies).unwrap();
        let mut problems = Vec::new();
        let rules = Policies::from_raw(serde_json::from_value(config).unwrap(), "p", &mut problems)
            .for_service("cart", &BTreeMap::new());
        let row = Row {
            service: "cart".into(),
            cells: vec![Some(prod(&["1.0.0"])), None],
            flags: Flags::default(),
            labels: BTreeMap::new(),
        };
        let sightings = sightings();
        let freshness = [fresh(0, at(96)), fresh(0, at(96))];
        let context = Context {
            environments: &["stg", "prod"],
            freshness: &freshness,
            sightings: &sightings,
            now: at(96),
        };
        let judged = judge(&row, &rules, &context);
        assert_eq!(judged.len(), 2);
        assert!(
            judged
                .iter()
                .all(|j| j.result == Outcome::Unknown && j.reason == "does not run in prod")
        );
    }
}
