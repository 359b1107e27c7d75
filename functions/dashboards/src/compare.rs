//! Two columns of a matrix side by side: which services differ, which side
//! is ahead (by semantic version when both parse, else by deployment time)
//! and since when the difference has existed. Pure, like the matrix.

use std::cmp::Ordering;

use jiff::Timestamp;
use serde::Serialize;

use crate::matrix::{Cell, Row};

/// How `to` stands against `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Standing {
    Same,
    /// `to` runs a newer version than `from` (e.g. a hotfix in prod).
    Ahead,
    /// `to` runs an older version (waiting for promotion).
    Behind,
    /// Different versions, and neither order can be told.
    Differs,
    OnlyInFrom,
    OnlyInTo,
}

/// What decided ahead or behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Basis {
    SemanticVersion,
    DeploymentTime,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    pub versions: Vec<String>,
    pub last_change: Timestamp,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub service: String,
    pub standing: Standing,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis: Option<Basis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Side>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Side>,
    /// When the difference began: the later of the two sides' last changes
    /// (or the one side's, for a service only one side runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompareSummary {
    pub same: u32,
    pub ahead: u32,
    pub behind: u32,
    pub differs: u32,
    pub only_in_from: u32,
    pub only_in_to: u32,
}

/// `v1.2.3` and `1.2.3` alike; anything else is not a semantic version.
pub(crate) fn semantic(version: &str) -> Option<semver::Version> {
    semver::Version::parse(version.strip_prefix('v').unwrap_or(version)).ok()
}

/// The newest version a cell runs, when every one of them parses.
fn newest_semantic(cell: &Cell) -> Option<semver::Version> {
    cell.versions.iter().map(|v| semantic(v)).collect::<Option<Vec<_>>>()?.into_iter().max()
}

fn side(cell: &Cell) -> Side {
    Side { versions: cell.versions.clone(), last_change: cell.last_change }
}

fn standing(from: &Cell, to: &Cell) -> (Standing, Option<Basis>) {
    if from.versions == to.versions {
        return (Standing::Same, None);
    }
    let by_version = match (newest_semantic(from), newest_semantic(to)) {
        (Some(f), Some(t)) => Some(t.cmp_precedence(&f)),
        _ => None,
    };
    let (order, basis) = match by_version {
        Some(order) if order != Ordering::Equal => (order, Basis::SemanticVersion),
        _ => (to.last_change.cmp(&from.last_change), Basis::DeploymentTime),
    };
    match order {
        Ordering::Greater => (Standing::Ahead, Some(basis)),
        Ordering::Less => (Standing::Behind, Some(basis)),
        Ordering::Equal => (Standing::Differs, None),
    }
}

/// Every service of the two columns, with how `to` stands against `from`.
pub fn compare<'a>(
    rows: impl IntoIterator<Item = &'a Row>,
    from: usize,
    to: usize,
) -> Vec<Difference> {
    rows.into_iter()
        .filter_map(|row| {
            let (f, t) = (row.cells.get(from)?.as_ref(), row.cells.get(to)?.as_ref());
            let (standing, basis, since) = match (f, t) {
                (None, None) => return None,
                (Some(f), None) => (Standing::OnlyInFrom, None, Some(f.last_change)),
                (None, Some(t)) => (Standing::OnlyInTo, None, Some(t.last_change)),
                (Some(f), Some(t)) => {
                    let (standing, basis) = standing(f, t);
                    let since =
                        (standing != Standing::Same).then(|| f.last_change.max(t.last_change));
                    (standing, basis, since)
                }
            };
            Some(Difference {
                service: row.service.clone(),
                standing,
                basis,
                from: f.map(side),
                to: t.map(side),
                since,
            })
        })
        .collect()
}

impl CompareSummary {
    pub fn of(differences: &[Difference]) -> Self {
        let mut summary = Self::default();
        for d in differences {
            let count = match d.standing {
                Standing::Same => &mut summary.same,
                Standing::Ahead => &mut summary.ahead,
                Standing::Behind => &mut summary.behind,
                Standing::Differs => &mut summary.differs,
                Standing::OnlyInFrom => &mut summary.only_in_from,
                Standing::OnlyInTo => &mut summary.only_in_to,
            };
            *count += 1;
        }
        summary
    }
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::Ahead => "ahead",
            Self::Behind => "behind",
            Self::Differs => "differs",
            Self::OnlyInFrom => "onlyInFrom",
            Self::OnlyInTo => "onlyInTo",
        }
    }
}

#[cfg(test)]
mod tests {
    use shared::freshness::Freshness;

    use super::*;
    use crate::matrix::Flags;

    fn cell(versions: &[&str], last_change: &str) -> Option<Cell> {
        Some(Cell {
            versions: versions.iter().map(|v| v.to_string()).collect(),
            images: Vec::new(),
            placements: Vec::new(),
            ready: 1,
            desired: 1,
            rolling: false,
            last_change: last_change.parse().unwrap(),
            freshness: Freshness {
                last_success: None,
                age_seconds: Some(1),
                last_attempt_failed: false,
                stale: false,
            },
            clusters: vec![0],
        })
    }

    fn row(service: &str, stg: Option<Cell>, prod: Option<Cell>) -> Row {
        Row {
            service: service.into(),
            cells: vec![stg, prod],
            flags: Flags::default(),
            labels: Default::default(),
        }
    }

    #[test]
    fn standings_by_version_then_by_time() {
        let rows = vec![
            row(
                "cart",
                cell(&["1.3.0"], "2026-11-20T10:00:00Z"),
                cell(&["1.2.0"], "2026-11-01T00:00:00Z"),
            ),
            row(
                "hotfix",
                cell(&["v2.0.0"], "2026-11-20T10:00:00Z"),
                cell(&["v2.0.1"], "2026-11-21T00:00:00Z"),
            ),
            row(
                "web",
                cell(&["main-abc"], "2026-11-20T10:00:00Z"),
                cell(&["main-def"], "2026-11-22T00:00:00Z"),
            ),
            row(
                "same",
                cell(&["1.0.0"], "2026-11-01T00:00:00Z"),
                cell(&["1.0.0"], "2026-11-02T00:00:00Z"),
            ),
            row("new", cell(&["0.1.0"], "2026-11-19T00:00:00Z"), None),
            row(
                "pre",
                cell(&["1.0.0"], "2026-11-19T00:00:00Z"),
                cell(&["1.0.0-rc.1"], "2026-11-20T00:00:00Z"),
            ),
        ];
        let found = compare(&rows, 0, 1);
        let by: std::collections::BTreeMap<&str, &Difference> =
            found.iter().map(|d| (d.service.as_str(), d)).collect();
        assert_eq!(
            (by["cart"].standing, by["cart"].basis),
            (Standing::Behind, Some(Basis::SemanticVersion))
        );
        assert_eq!(
            by["cart"].since,
            Some("2026-11-20T10:00:00Z".parse().unwrap()),
            "since stg moved on"
        );
        assert_eq!(by["hotfix"].standing, Standing::Ahead);
        assert_eq!(
            (by["web"].standing, by["web"].basis),
            (Standing::Ahead, Some(Basis::DeploymentTime))
        );
        assert_eq!((by["same"].standing, by["same"].since), (Standing::Same, None));
        assert_eq!(by["new"].standing, Standing::OnlyInFrom);
        assert_eq!(by["pre"].standing, Standing::Behind, "a pre-release precedes its release");
        let summary = CompareSummary::of(&found);
        assert_eq!(
            (summary.ahead, summary.behind, summary.same, summary.only_in_from),
            (2, 2, 1, 1)
        );
    }
}
