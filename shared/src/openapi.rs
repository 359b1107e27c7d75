//! The API's OpenAPI 3.1 description, built from one table of routes and
//! the schemas of the Rust types that the routes take and answer (derived
//! with `utoipa`, so they cannot drift from what is served).
//!
//! A route names its body and answer schemas; each crate lists its own
//! types (`shared::openapi::Schemas`, `auth::Schemas`, …). The document is
//! built where every crate is seen, by the drift test, and checked in as
//! `docs/openapi.json`, which the dashboards function serves at
//! `/openapi.json`; the test fails when the two differ, when a name has no
//! schema, or when a documented route is not routed (`UPDATE_OPENAPI=1`
//! rewrites the file).

use serde_json::{Map, Value, json};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    SignedIn,
    Admin,
}

/// One route: what it does, what it takes, what it answers.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
    /// The schema of the JSON body it takes.
    pub request: Option<&'static str>,
    /// The schema of its answer (of each item, for a list).
    pub answer: Option<&'static str>,
    /// Other successful answers: status and schema.
    pub also: &'static [(u16, &'static str)],
    pub ok: u16,
    /// Answers `{items, next}` of `answer`.
    pub list: bool,
    /// Also answers CSV (`?format=csv` or `Accept: text/csv`).
    pub csv: bool,
}

const fn route(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
) -> Route {
    Route {
        method,
        path,
        tag,
        summary,
        access: Access::SignedIn,
        query: &[],
        request: None,
        answer: None,
        also: &[],
        ok: 200,
        list: false,
        csv: false,
    }
}

const PAGE: [(&str, &str); 2] = [
    ("limit", "Items per page, 1 to 500."),
    ("cursor", "The `next` of the previous page, passed back untouched."),
];
const FORMAT: (&str, &str) =
    ("format", "`json` (default) or `csv`; `Accept: text/csv` also asks for CSV.");
const MATRIX_QUERY: [(&str, &str); 8] = [
    ("namespace", "Only workloads in this namespace."),
    ("q", "Only services whose name contains this (case-insensitive)."),
    (
        "problems",
        "`true`: only rows with drift, mixed versions, digest drift, broken promotion order or stale data.",
    ),
    (
        "flag",
        "Only rows with this flag: consistent, drift, mixed, digestDrift, promotionOrderBroken, rolling, stale.",
    ),
    ("at", "An RFC 3339 time: the matrix as it was then, rebuilt from history."),
    FORMAT,
    ("limit", "Rows per page, 1 to 500 (default 50)."),
    PAGE[1],
];

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    Route {
        answer: Some("Probe"),
        access: Access::Public,
        ..route(
            "GET",
            "/health",
            "operations",
            "Liveness: answers without touching any dependency.",
        )
    },
    Route {
        answer: Some("Probe"),
        access: Access::Public,
        ..route("GET", "/ready", "operations", "Readiness: the table answers.")
    },
    Route {
        access: Access::Public,
        ..route("GET", "/openapi.json", "operations", "This document.")
    },
    Route {
        request: Some("SignupBody"),
        answer: Some("StatusAnswer"),
        access: Access::Public,
        ok: 202,
        ..route(
            "POST",
            "/auth/signup",
            "auth",
            "Start a sign-up: a verification code is mailed. The same answer for any address.",
        )
    },
    Route {
        request: Some("VerifyBody"),
        answer: Some("StatusAnswer"),
        access: Access::Public,
        ..route(
            "POST",
            "/auth/verify",
            "auth",
            "Verify an address with its code and the password chosen at sign-up (the code works only with the password of the sign-up it was mailed for).",
        )
    },
    Route {
        request: Some("EmailBody"),
        answer: Some("StatusAnswer"),
        access: Access::Public,
        ok: 202,
        ..route(
            "POST",
            "/auth/resend",
            "auth",
            "Mail a new verification code (at most one a minute, five an hour).",
        )
    },
    Route {
        request: Some("LoginBody"),
        answer: Some("SessionAnswer"),
        also: &[(202, "CodeSent")],
        access: Access::Public,
        ..route(
            "POST",
            "/auth/login",
            "auth",
            "Sign in; answers a session, or 202 with a challenge when a mailed code is the second step.",
        )
    },
    Route {
        request: Some("EmailBody"),
        answer: Some("CodeSent"),
        access: Access::Public,
        ok: 202,
        ..route(
            "POST",
            "/auth/login/email",
            "auth",
            "Sign in by mail: a code is mailed to the address if it has an active account; answers a challenge, the same for any address. Not stopped by password lockouts.",
        )
    },
    Route {
        request: Some("LoginCodeBody"),
        answer: Some("SessionAnswer"),
        access: Access::Public,
        ..route(
            "POST",
            "/auth/login/code",
            "auth",
            "The second step of a sign-in: the mailed code.",
        )
    },
    Route { ok: 204, ..route("POST", "/auth/logout", "auth", "End this session.") },
    Route {
        request: Some("EmailBody"),
        answer: Some("StatusAnswer"),
        access: Access::Public,
        ok: 202,
        ..route(
            "POST",
            "/auth/password/forgot",
            "auth",
            "Mail a password reset code. The same answer for any address.",
        )
    },
    Route {
        request: Some("ResetBody"),
        answer: Some("StatusAnswer"),
        access: Access::Public,
        ..route(
            "POST",
            "/auth/password/reset",
            "auth",
            "Set a new password with a reset code; ends every other session.",
        )
    },
    Route { answer: Some("MeAnswer"), ..route("GET", "/auth/me", "auth", "Who is signed in.") },
    Route {
        answer: Some("AccountSummary"),
        access: Access::Admin,
        query: &PAGE,
        list: true,
        ..route("GET", "/auth/users", "auth", "Accounts.")
    },
    Route {
        request: Some("UserChange"),
        answer: Some("AccountSummary"),
        access: Access::Admin,
        ..route(
            "PATCH",
            "/auth/users/{email}",
            "auth",
            "Change an account's role or teams, or disable it (its sessions end at once).",
        )
    },
    Route {
        answer: Some("EnvironmentView"),
        query: &PAGE,
        list: true,
        ..route(
            "GET",
            "/environments",
            "inventory",
            "Environments: clusters, refresh interval, freshness.",
        )
    },
    Route {
        answer: Some("EnvironmentView"),
        ..route("GET", "/environments/{env}", "inventory", "One environment.")
    },
    Route {
        request: Some("EnvironmentConfig"),
        answer: Some("EnvironmentView"),
        access: Access::Admin,
        ..route(
            "PUT",
            "/environments/{env}",
            "inventory",
            "Add or replace an environment (as the configuration file writes it; validated like the file). 201 when added.",
        )
    },
    Route {
        access: Access::Admin,
        ok: 204,
        ..route(
            "DELETE",
            "/environments/{env}",
            "inventory",
            "Remove an environment from the configuration.",
        )
    },
    Route {
        answer: Some("RefreshView"),
        ok: 202,
        ..route(
            "POST",
            "/environments/{env}/refresh",
            "inventory",
            "Snapshot every cluster of the environment now (each at most once per 30 s).",
        )
    },
    Route {
        answer: Some("CacheCleared"),
        access: Access::Admin,
        ..route(
            "DELETE",
            "/environments/{env}/cache",
            "inventory",
            "Delete the environment's snapshot data.",
        )
    },
    Route {
        answer: Some("ClusterView"),
        query: &[("environment", "Only this environment's clusters."), PAGE[0], PAGE[1]],
        list: true,
        ..route("GET", "/clusters", "inventory", "Clusters and their status.")
    },
    Route {
        answer: Some("ClusterView"),
        ..route(
            "GET",
            "/clusters/{cluster}",
            "inventory",
            "A cluster's status: last attempt, last success, last error, counts, Kubernetes version, freshness.",
        )
    },
    Route {
        answer: Some("RefreshView"),
        ok: 202,
        ..route(
            "POST",
            "/clusters/{cluster}/refresh",
            "inventory",
            "Snapshot the cluster now (at most once per 30 s).",
        )
    },
    Route {
        answer: Some("Workload"),
        query: &[
            ("namespace", "Only this namespace."),
            ("kind", "Deployment, StatefulSet or DaemonSet."),
            ("label", "A Kubernetes label selector."),
            ("q", "Name, service, version or image contains this."),
            PAGE[0],
            PAGE[1],
        ],
        list: true,
        ..route("GET", "/clusters/{cluster}/workloads", "inventory", "A cluster's workloads.")
    },
    Route {
        answer: Some("PodRecord"),
        query: &[
            ("namespace", "Only this namespace."),
            ("phase", "Pending, Running, Succeeded, Failed or Unknown."),
            PAGE[0],
            PAGE[1],
        ],
        list: true,
        ..route("GET", "/clusters/{cluster}/pods", "inventory", "A cluster's pods.")
    },
    Route {
        answer: Some("PodEvent"),
        query: &[
            ("namespace", "Only this namespace."),
            ("pod", "Only this pod."),
            ("since", "RFC 3339: events at or after."),
            ("until", "RFC 3339: events at or before."),
            PAGE[0],
            PAGE[1],
        ],
        list: true,
        ..route(
            "GET",
            "/clusters/{cluster}/pods/history",
            "inventory",
            "A cluster's pod changes (created, phase, node, restarts once per burst, deleted), newest first.",
        )
    },
    Route {
        answer: Some("StatsView"),
        query: &[("namespace", "Only this namespace.")],
        ..route(
            "GET",
            "/clusters/{cluster}/stats",
            "inventory",
            "Workloads, pods, running, pending, failed.",
        )
    },
    Route {
        answer: Some("ImagePlacement"),
        query: &[
            ("q", "A repository (`shop/cart`), `repository:tag` or `sha256:` digest. Required."),
            PAGE[0],
            PAGE[1],
        ],
        list: true,
        ..route("GET", "/images", "inventory", "Where an image runs.")
    },
    Route {
        answer: Some("DashboardView"),
        query: &PAGE,
        list: true,
        ..route(
            "GET",
            "/dashboards",
            "dashboards",
            "Dashboards and the columns the caller may see.",
        )
    },
    Route {
        answer: Some("MatrixPage"),
        query: &MATRIX_QUERY,
        csv: true,
        ..route(
            "GET",
            "/dashboards/{name}",
            "dashboards",
            "The version matrix: services × environments, cells with versions, images, digests, placements, ready/desired, last change and freshness; row flags and summary counts.",
        )
    },
    Route {
        answer: Some("ComparePage"),
        query: &[
            ("from", "An environment column. Required."),
            ("to", "A later (or any other) column. Required."),
            ("namespace", "Only workloads in this namespace."),
            ("q", "Only services whose name contains this."),
            ("all", "`true`: include services that are the same on both sides."),
            FORMAT,
            PAGE[0],
            PAGE[1],
        ],
        csv: true,
        ..route(
            "GET",
            "/dashboards/{name}/compare",
            "dashboards",
            "What differs between two columns: `to` ahead of or behind `from` (by semantic version, else by deployment time), and since when.",
        )
    },
    Route {
        answer: Some("PolicyPage"),
        query: &[
            ("namespace", "Only workloads in this namespace."),
            ("q", "Only services whose name contains this."),
            ("result", "Only lines with this result: `pass`, `fail` or `unknown`."),
            FORMAT,
            PAGE[0],
            PAGE[1],
        ],
        csv: true,
        ..route(
            "GET",
            "/dashboards/{name}/policies",
            "dashboards",
            "The dashboard's policies judged on what runs now: every service × rule × column pair (or column), pass, fail or unknown, with its reason and since when.",
        )
    },
    Route {
        answer: Some("DiffPage"),
        query: &[
            ("from", "An RFC 3339 time. Required."),
            ("to", "A later RFC 3339 time. Required."),
            ("namespace", "Only workloads in this namespace."),
            ("q", "Only services whose name contains this."),
            PAGE[0],
            PAGE[1],
        ],
        ..route(
            "GET",
            "/dashboards/{name}/diff",
            "dashboards",
            "What changed in the matrix between two times, per service and column.",
        )
    },
    Route {
        answer: Some("ServiceView"),
        query: &PAGE,
        ..route(
            "GET",
            "/dashboards/{name}/services/{service}",
            "dashboards",
            "One service across the dashboard's columns and clusters, with a page of its history.",
        )
    },
    Route {
        answer: Some("HistoryEvent"),
        query: &[
            ("service", "Only this service."),
            ("environment", "Only this environment."),
            ("cluster", "Only this cluster."),
            ("since", "RFC 3339: events at or after."),
            ("until", "RFC 3339: events at or before."),
            FORMAT,
            PAGE[0],
            PAGE[1],
        ],
        list: true,
        csv: true,
        ..route(
            "GET",
            "/history",
            "dashboards",
            "Change events (added, changed, removed), newest first.",
        )
    },
];

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn operation(route: &Route) -> Value {
    let mut parameters = path_parameters(route.path);
    parameters.extend(route.query.iter().map(|(name, description)| {
        let schema = if *name == "limit" { json!({"type": "integer", "minimum": 1, "maximum": 500}) } else { json!({"type": "string"}) };
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
    }));
    let answer_schema = |name: &str| match route.list {
        true => json!({
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {"type": "array", "items": reference(name)},
                "next": {"type": "string", "description": "The cursor of the next page; absent on the last page."}
            }
        }),
        false => reference(name),
    };
    let success = |schema: Option<Value>| {
        let mut content = Map::new();
        if let Some(schema) = schema {
            content.insert("application/json".into(), json!({"schema": schema}));
        }
        if route.csv {
            content.insert("text/csv".into(), json!({"schema": {"type": "string"}}));
        }
        let mut ok = json!({"description": "Success."});
        if !content.is_empty() {
            ok["content"] = Value::Object(content);
        }
        ok
    };
    let mut responses = Map::new();
    let ok = match (route.ok, route.answer) {
        (204, _) => success(None),
        (_, Some(name)) => success(Some(answer_schema(name))),
        (_, None) => success(Some(json!({"type": "object"}))),
    };
    if route.method == "PUT" {
        // A PUT that creates answers 201, one that replaces 200.
        responses.insert("201".into(), ok.clone());
    }
    responses.insert(route.ok.to_string(), ok);
    for (status, name) in route.also {
        responses.insert(status.to_string(), success(Some(reference(name))));
    }
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": reference("Error")}}});
    responses
        .insert("400".into(), error("Bad input: the message starts with the parameter's name."));
    if route.access != Access::Public {
        responses.insert("401".into(), error("No valid session."));
        responses.insert("404".into(), error("Not found, or not visible to the caller's teams."));
    }
    if route.access == Access::Admin {
        responses.insert("403".into(), error("Admins only."));
    }
    if route.path.starts_with("/auth/login") {
        responses.insert("401".into(), error("Wrong address or password, or a wrong code."));
    }
    if route.request.is_some() {
        responses.insert("413".into(), error("The body is too large."));
        responses
            .insert("415".into(), error("The body is not JSON (Content-Type: application/json)."));
    }
    responses.insert("405".into(), error("The route does not take this method (see Allow)."));
    responses.insert("429".into(), error("Too many requests: see Retry-After."));
    responses.insert("503".into(), error("A dependency is unavailable: retry later."));
    let mut op = json!({
        "tags": [route.tag],
        "summary": route.summary,
        "operationId": format!("{} {}", route.method.to_lowercase(), route.path),
        "responses": responses,
    });
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    op["security"] = match route.access {
        Access::Public => json!([]),
        _ => json!([{"session": []}]),
    };
    if let Some(name) = route.request {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": reference(name)}}
        });
    }
    op
}

/// The document, with `schemas` (every crate's, by name) as its components.
pub fn document(schemas: Map<String, Value>) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path).or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Release dashboard API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Which version of which service runs in which environment of an EKS fleet, whether it is the same everywhere it should be, and since when. Every list is paginated (`limit`, `cursor`); errors are `{\"error\": {\"code\", \"message\"}}`; environments outside the caller's teams do not exist for them."
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "operations"},
            {"name": "auth", "description": "Accounts, sign-in and sessions."},
            {"name": "inventory", "description": "Environments, clusters, workloads, pods, images, refresh."},
            {"name": "dashboards", "description": "Version matrices, compare, history."}
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {"session": {"type": "http", "scheme": "bearer", "description": "The token a sign-in answers."}},
            "schemas": schemas,
        }
    })
}

/// The schemas of the shared crate's types that routes take or answer.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    crate::http::ErrorBody,
    crate::http::Probe,
    crate::config::RawEnvironment,
    crate::model::Workload,
    crate::model::PodRecord,
    crate::model::HistoryEvent,
    crate::records::account::AccountSummary,
    crate::auth::Principal,
)))]
pub struct Schemas;

/// The components of an OpenApi derive, as JSON by name.
pub fn components_of(api: &utoipa::openapi::OpenApi) -> Map<String, Value> {
    api.components
        .as_ref()
        .and_then(|c| serde_json::to_value(&c.schemas).ok())
        .and_then(|v| match v {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default()
}

/// The document as served and checked in: pretty, with a final newline.
pub fn text(schemas: Map<String, Value>) -> String {
    let mut text = serde_json::to_string_pretty(&document(schemas)).unwrap_or_default();
    text.push('\n');
    text
}
