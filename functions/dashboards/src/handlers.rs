//! The dashboards routes. Every route is scoped to the environments the
//! caller's teams may see: hidden environments are not columns, and a
//! dashboard, service or event outside them is a 404 or absent.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use shared::auth::Authenticated;
use shared::http::{ApiError, ApiPath, ApiQuery};
use shared::model::HistoryEvent;
use shared::paging::{Paged, Paging, page};
use shared::params::{self, Format};

use crate::Deps;
use crate::assemble::{RowFilter, matrices};
use crate::compare::{CompareSummary, Difference, Standing, compare as compare_columns};
use crate::csv;
use crate::history::{self, Filter};
use crate::load::{self, Visible};
use crate::matrix::{Column, Flags, Row, RowView, Summary};
use crate::policies::{self, Outcome, ReportLine, Tally};

type AppState = State<Arc<Deps>>;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardView {
    name: String,
    title: String,
    /// The columns the caller may see, in promotion order.
    columns: Vec<String>,
}

fn view(visible: &Visible<'_>) -> DashboardView {
    DashboardView {
        name: visible.dashboard.name.as_str().to_owned(),
        title: visible.dashboard.title.clone(),
        columns: visible.columns.iter().map(|e| e.name.as_str().to_owned()).collect(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn list_dashboards(
    State(context): AppState,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Paged<DashboardView>>, ApiError> {
    let paging = Paging::new(query.limit, query.cursor)?;
    let fleet = context.fleet().await?;
    let mut views: Vec<DashboardView> = fleet
        .dashboards
        .iter()
        .map(|d| load::visible(&fleet, &principal, d))
        .filter(|v| !v.columns.is_empty())
        .map(|v| view(&v))
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(page(views, |v| v.name.clone(), &paging)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixQuery {
    namespace: Option<String>,
    q: Option<String>,
    problems: Option<String>,
    flag: Option<String>,
    at: Option<String>,
    format: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Matrix rows by default per page: a row holds a cell per column, each
/// with its placements (about 12 KB for ten columns of four clusters).
pub const MATRIX_PAGE: u32 = 50;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatrixPage<'a> {
    dashboard: DashboardView,
    /// The time this matrix was rebuilt for; absent for the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<Timestamp>,
    columns: Vec<Column>,
    /// Counts over every row the filters other than `problems` and `flag` keep.
    summary: Summary,
    items: Vec<RowView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

pub async fn get_dashboard(
    State(context): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<MatrixQuery>,
) -> Result<Response, ApiError> {
    let filter = RowFilter::new(query.namespace, query.q)?;
    let problems = params::flag("problems", query.problems)?;
    let flag = match query.flag.filter(|f| !f.is_empty()) {
        Some(f) if Flags::NAMES.contains(&f.as_str()) => Some(f),
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "flag",
                format!("must be one of {}", Flags::NAMES.join(", ")),
            ));
        }
        None => None,
    };
    let at = params::time("at", query.at)?;
    let format = Format::negotiate(query.format, &headers)?;
    let paging = Paging::with_default(query.limit, query.cursor, MATRIX_PAGE)?;
    let fleet = context.fleet().await?;
    let visible = load::dashboard(&fleet, &principal, &name)?;
    let times: Vec<(Timestamp, &str)> = at.map(|at| (at, "at")).into_iter().collect();
    let m = matrices(&context, &visible, &filter, &times).await?;
    let rows: Vec<(&Row, Flags)> = m
        .rows
        .iter()
        .flat_map(|rows| rows.iter())
        .filter(|r| filter.keeps_row(r))
        .map(|r| (r, m.flags(r)))
        .collect();
    let summary = Summary::of(rows.iter().map(|(_, f)| *f));
    let selected = rows.into_iter().filter(|(_, f)| {
        (!problems || f.is_problem()) && flag.as_deref().is_none_or(|name| f.has(name))
    });
    if format == Format::Csv {
        let columns = visible.columns.iter().map(|e| e.name.as_str());
        return Ok(csv::matrix(format!("{name}.csv"), columns, selected).into_response());
    }
    let Paged { items, next } = page(selected, |(r, _)| r.service.clone(), &paging)?;
    let items = items.into_iter().map(|(r, _)| m.current(r)).collect();
    let columns = m.columns;
    Ok(Json(MatrixPage { dashboard: view(&visible), at, columns, summary, items, next })
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesQuery {
    namespace: Option<String>,
    q: Option<String>,
    result: Option<String>,
    format: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Report lines by default per page.
pub const POLICY_PAGE: u32 = 200;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyPage {
    dashboard: DashboardView,
    evaluated_at: Timestamp,
    /// Counts over every line the filters other than `result` keep.
    summary: Tally,
    items: Vec<ReportLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Every service × rule × column pair (or column) of a dashboard's
/// policies, judged on what runs now, with its reason and since when.
pub async fn get_policies(
    State(context): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<PoliciesQuery>,
) -> Result<Response, ApiError> {
    let filter = RowFilter::new(query.namespace, query.q)?;
    let result = match query.result.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some("pass") => Some(Outcome::Pass),
        Some("fail") => Some(Outcome::Fail),
        Some("unknown") => Some(Outcome::Unknown),
        Some(_) => {
            return Err(ApiError::invalid_parameter("result", "must be pass, fail or unknown"));
        }
    };
    let format = Format::negotiate(query.format, &headers)?;
    let paging = Paging::with_default(query.limit, query.cursor, POLICY_PAGE)?;
    let fleet = context.fleet().await?;
    let visible = load::dashboard(&fleet, &principal, &name)?;
    let m = matrices(&context, &visible, &filter, &[]).await?;
    let now = context.now();
    let sightings = m.sightings(&visible, now);
    let environments: Vec<&str> = visible.columns.iter().map(|e| e.name.as_str()).collect();
    let freshness: Vec<_> = m.columns.iter().map(|c| c.freshness.clone()).collect();
    let judged = policies::Context {
        environments: &environments,
        freshness: &freshness,
        sightings: &sightings,
        now,
    };
    let rows = m.rows.iter().flat_map(|rows| rows.iter()).filter(|r| filter.keeps_row(r));
    let lines = policies::report(rows, &visible.dashboard.policies, &judged);
    let summary = Tally::of(&lines);
    let selected = lines.into_iter().filter(|l| result.is_none_or(|r| l.judgement.result == r));
    if format == Format::Csv {
        return Ok(csv::policies(format!("{name}-policies.csv"), selected).into_response());
    }
    // Lines are in service order, each service's in a fixed order: the
    // key is the service and the line's place in it.
    let keyed = selected.scan((String::new(), 0u32), |(service, n), line| {
        *n = if *service == line.service { *n + 1 } else { 0 };
        service.clone_from(&line.service);
        Some((format!("{}\u{1}{:05}", line.service, n), line))
    });
    let Paged { items, next } = page(keyed, |(key, _)| key.clone(), &paging)?;
    let items = items.into_iter().map(|(_, line)| line).collect();
    let dashboard = view(&visible);
    Ok(Json(PolicyPage { dashboard, evaluated_at: now, summary, items, next }).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareQuery {
    from: Option<String>,
    to: Option<String>,
    namespace: Option<String>,
    q: Option<String>,
    /// Include services that are the same on both sides.
    all: Option<String>,
    format: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComparePage {
    dashboard: DashboardView,
    from: String,
    to: String,
    summary: CompareSummary,
    items: Vec<Difference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

fn required(name: &str, value: Option<String>) -> Result<String, ApiError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| ApiError::invalid_parameter(name, "is required"))
}

pub async fn compare(
    State(context): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<CompareQuery>,
) -> Result<Response, ApiError> {
    let from = required("from", query.from)?;
    let to = required("to", query.to)?;
    let filter = RowFilter::new(query.namespace, query.q)?;
    let all = params::flag("all", query.all)?;
    let format = Format::negotiate(query.format, &headers)?;
    let paging = Paging::new(query.limit, query.cursor)?;
    let fleet = context.fleet().await?;
    let visible = load::dashboard(&fleet, &principal, &name)?;
    let (from_column, to_column) = (visible.column("from", &from)?, visible.column("to", &to)?);
    let m = matrices(&context, &visible, &filter, &[]).await?;
    let rows = m.rows.iter().flat_map(|rows| rows.iter()).filter(|r| filter.keeps_row(r));
    let differences = compare_columns(rows, from_column, to_column);
    let summary = CompareSummary::of(&differences);
    let selected = differences.into_iter().filter(|d| all || d.standing != Standing::Same);
    if format == Format::Csv {
        let filename = format!("{name}-{from}-{to}.csv");
        return Ok(csv::comparison(filename, &from, &to, selected).into_response());
    }
    let Paged { items, next } = page(selected, |d| d.service.clone(), &paging)?;
    Ok(Json(ComparePage { dashboard: view(&visible), from, to, summary, items, next })
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
    namespace: Option<String>,
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CellChange {
    environment: String,
    from: Vec<String>,
    to: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceChanges {
    service: String,
    changes: Vec<CellChange>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiffPage {
    dashboard: DashboardView,
    from: Timestamp,
    to: Timestamp,
    items: Vec<ServiceChanges>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// What changed in the matrix between two times: per service, the cells
/// whose versions differ.
pub async fn diff(
    State(context): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Json<DiffPage>, ApiError> {
    let from = params::time("from", Some(required("from", query.from)?))?.unwrap_or_default();
    let to = params::time("to", Some(required("to", query.to)?))?.unwrap_or_default();
    if from > to {
        return Err(ApiError::invalid_parameter("from", "must not be after to"));
    }
    let filter = RowFilter::new(query.namespace, query.q)?;
    let paging = Paging::new(query.limit, query.cursor)?;
    let fleet = context.fleet().await?;
    let visible = load::dashboard(&fleet, &principal, &name)?;
    let to_time = to.min(context.now());
    let m = matrices(&context, &visible, &filter, &[(to_time, "to"), (from, "from")]).await?;
    let (after, before) = (m.rows[0].as_slice(), m.rows[1].as_slice());
    let versions = |rows: &[Row], service: &str, column: usize| -> Vec<String> {
        rows.iter()
            .find(|r| r.service == service)
            .and_then(|r| r.cells[column].as_ref())
            .map(|c| c.versions.clone())
            .unwrap_or_default()
    };
    let services: std::collections::BTreeSet<&str> = before
        .iter()
        .chain(after)
        .filter(|r| filter.keeps_row(r))
        .map(|r| r.service.as_str())
        .collect();
    let changed = services.into_iter().filter_map(|service| {
        let changes: Vec<CellChange> = visible
            .columns
            .iter()
            .enumerate()
            .filter_map(|(c, environment)| {
                let (was, is) = (versions(before, service, c), versions(after, service, c));
                (was != is).then(|| CellChange {
                    environment: environment.name.as_str().to_owned(),
                    from: was,
                    to: is,
                })
            })
            .collect();
        (!changes.is_empty()).then(|| ServiceChanges { service: service.to_owned(), changes })
    });
    let Paged { items, next } = page(changed, |s| s.service.clone(), &paging)?;
    Ok(Json(DiffPage { dashboard: view(&visible), from, to, items, next }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView<'a> {
    dashboard: DashboardView,
    columns: Vec<Column>,
    row: RowView<'a>,
    /// Its changes in the dashboard's columns, newest first.
    history: Paged<HistoryEvent>,
}

pub async fn get_service(
    State(context): AppState,
    Authenticated(principal): Authenticated,
    ApiPath((name, service)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ServiceQuery>,
) -> Result<Response, ApiError> {
    let paging = Paging::new(query.limit, query.cursor)?;
    let fleet = context.fleet().await?;
    let visible = load::dashboard(&fleet, &principal, &name)?;
    let filter = RowFilter { namespace: None, q: None };
    let m = matrices(&context, &visible, &filter, &[]).await?;
    let row = m
        .rows
        .iter()
        .flat_map(|rows| rows.iter())
        .find(|r| r.service == service)
        .map(|r| m.current(r))
        .ok_or_else(|| ApiError::not_found("service"))?;
    let columns = m.columns;
    let history_filter = Filter {
        service: Some(service),
        within: visible.columns.iter().map(|e| e.name.as_str().to_owned()).collect(),
        ..Filter::default()
    };
    let history =
        history::page(context.store.as_ref(), &fleet, &principal, &history_filter, &paging).await?;
    Ok(Json(ServiceView { dashboard: view(&visible), columns, row, history }).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    service: Option<String>,
    environment: Option<String>,
    cluster: Option<String>,
    since: Option<String>,
    until: Option<String>,
    format: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn name_param(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v)
            if v.len() > 253
                || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            Err(ApiError::invalid_parameter(
                name,
                "must be a name of letters, digits, '-', '_' and '.'",
            ))
        }
        other => Ok(other),
    }
}

pub async fn list_history(
    State(context): AppState,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    let filter = Filter {
        service: name_param("service", query.service)?,
        environment: name_param("environment", query.environment)?,
        cluster: name_param("cluster", query.cluster)?,
        since: params::time("since", query.since)?,
        until: params::time("until", query.until)?,
        within: Vec::new(),
    };
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since > until
    {
        return Err(ApiError::invalid_parameter("since", "must not be after until"));
    }
    let format = Format::negotiate(query.format, &headers)?;
    let paging = Paging::new(query.limit, query.cursor)?;
    let fleet = context.fleet().await?;
    let events =
        history::page(context.store.as_ref(), &fleet, &principal, &filter, &paging).await?;
    if format == Format::Csv {
        let csv = csv::history(&events.items);
        let mut response = csv.into_response();
        if let Some(next) = events.next.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
            response.headers_mut().insert("x-next-cursor", next);
        }
        return Ok(response);
    }
    Ok(Json(events).into_response())
}

/// The API's description (every function's routes and schemas), as
/// checked in: only the drift test sees every crate to build it.
pub async fn openapi() -> Response {
    const TEXT: &str = include_str!("../../../docs/openapi.json");
    ([(header::CONTENT_TYPE, "application/json")], TEXT).into_response()
}
