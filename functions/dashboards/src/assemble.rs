//! Assembling the matrices a request asks for: the visible columns' data
//! now (cached while every cluster's data is unchanged) or rebuilt for past
//! times from history, filtered to the rows asked for.

use std::sync::Arc;

use jiff::Timestamp;
use shared::context::ApiContext;
use shared::domain::Namespace;
use shared::freshness::Freshness;
use shared::http::ApiError;
use shared::model::Workload;
use shared::params;
use shared::reader::ClusterRead;

use crate::history;
use crate::load::{self, Visible};
use crate::matrix::{self, Column, ColumnData, Flags, Row, RowView, Sightings};
use crate::timeline::{ClusterState, ColumnTimeline};
use crate::{Deps, cache};

/// Which rows a matrix holds.
pub(crate) struct RowFilter {
    pub(crate) namespace: Option<Namespace>,
    pub(crate) q: Option<String>,
}

impl RowFilter {
    pub(crate) fn new(namespace: Option<String>, q: Option<String>) -> Result<Self, ApiError> {
        Ok(Self { namespace: params::namespace(namespace)?, q: params::search(q)? })
    }

    pub(crate) fn keeps(&self, visible: &Visible<'_>, workload: &Workload) -> bool {
        visible.dashboard.selector.matches(&workload.labels)
            && self.namespace.as_ref().is_none_or(|n| workload.namespace == n.as_str())
    }

    pub(crate) fn keeps_row(&self, row: &Row) -> bool {
        self.q.as_deref().is_none_or(|q| row.service.to_lowercase().contains(q))
    }
}

/// Matrices for now (cached while every cluster's data is unchanged), or
/// for each of `times` (newest first) rebuilt from history; rows are not
/// filtered by `q` and carry the freshness they were computed with.
pub(crate) struct Matrices {
    pub(crate) columns: Vec<Column>,
    /// Each column's clusters' freshness now.
    pub(crate) freshness: Vec<Vec<Freshness>>,
    pub(crate) rows: Vec<Arc<Vec<Row>>>,
    /// What was read: the sightings of the current matrix come from it.
    reads: Vec<Vec<ClusterRead>>,
}

impl Matrices {
    /// The row's flags with its staleness as of now.
    pub(crate) fn flags(&self, row: &Row) -> Flags {
        Flags { stale: matrix::is_stale(row, &self.freshness), ..row.flags }
    }

    /// Which versions each column ran, as first seen up to `until`.
    pub(crate) fn sightings(&self, visible: &Visible<'_>, until: Timestamp) -> Sightings {
        load::sightings(visible, &self.reads, until)
    }

    /// The row with its cells' freshness as of now.
    pub(crate) fn current<'a>(&self, row: &'a Row) -> RowView<'a> {
        matrix::view(row, &self.freshness)
    }
}

pub(crate) async fn matrices(
    deps: &Deps,
    visible: &Visible<'_>,
    filter: &RowFilter,
    times: &[(Timestamp, &str)],
) -> Result<Matrices, ApiError> {
    let reads = load::read(deps, visible).await?;
    let keep = |w: &Arc<Workload>| filter.keeps(visible, w);
    let shape = load::columns(deps, visible, &reads, |_, _| Vec::new());
    let freshness =
        shape.iter().map(|c| c.clusters.iter().map(|k| k.freshness.clone()).collect()).collect();
    let columns = matrix::columns(&shape);
    let rows_of = |data: &[ColumnData], until: Timestamp| -> Vec<Row> {
        matrix::rows(data, &load::sightings(visible, &reads, until))
    };
    if times.is_empty() {
        let namespace = filter.namespace.as_ref().map(|n| n.as_str());
        let rows = deps.own.get_or_compute(cache::key(visible, namespace, &reads), || {
            let data = load::columns(deps, visible, &reads, |c, k| {
                reads[c][k].data.workloads.iter().filter(|w| keep(w)).cloned().collect()
            });
            rows_of(&data, deps.now())
        });
        return Ok(Matrices { columns, freshness, rows: vec![rows], reads });
    }
    let mut timelines = rewindable(deps, visible, &reads, times).await?;
    let mut rows = Vec::with_capacity(times.len());
    for (at, _) in times {
        for timeline in &mut timelines {
            timeline.rewind_to(*at);
        }
        let data = load::columns(deps, visible, &reads, |c, k| {
            timelines[c]
                .cluster(k)
                .map(|s| s.workloads().filter(|w| keep(w)).cloned().collect())
                .unwrap_or_default()
        });
        rows.push(Arc::new(rows_of(&data, *at)));
    }
    Ok(Matrices { columns, freshness, rows, reads })
}

/// Each column's current state and its events since the earliest time.
pub(crate) async fn rewindable(
    context: &ApiContext,
    visible: &Visible<'_>,
    reads: &[Vec<ClusterRead>],
    times: &[(Timestamp, &str)],
) -> Result<Vec<ColumnTimeline>, ApiError> {
    let oldest = times.iter().min_by_key(|(at, _)| *at).copied().unwrap_or((context.now(), "at"));
    check_retained(context, oldest)?;
    let mut timelines = Vec::with_capacity(visible.columns.len());
    for (environment, clusters) in visible.columns.iter().zip(reads) {
        let events =
            history::since(context.store.as_ref(), environment.name.as_str(), oldest.0, oldest.1)
                .await?;
        let states = environment
            .clusters
            .iter()
            .zip(clusters)
            .map(|(cluster, read)| {
                (cluster.name.as_str().to_owned(), ClusterState::now(&read.data.workloads))
            })
            .collect();
        timelines.push(ColumnTimeline::new(states, events));
    }
    Ok(timelines)
}

/// A past time must be within the history kept, and not in the future.
pub(crate) fn check_retained(
    context: &ApiContext,
    (at, name): (Timestamp, &str),
) -> Result<(), ApiError> {
    let now = context.now();
    if at > now {
        return Err(ApiError::invalid_parameter(name, "is in the future"));
    }
    let retention = jiff::SignedDuration::try_from(context.history_retention)
        .unwrap_or(jiff::SignedDuration::MAX);
    if now.duration_since(at) > retention {
        let days = context.history_retention.as_secs() / 86_400;
        return Err(ApiError::invalid_parameter(
            name,
            format!("is older than the history kept ({days} days)"),
        ));
    }
    Ok(())
}
