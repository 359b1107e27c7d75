//! Query parameters the API functions share, checked the same way
//! everywhere: a bad value is a 400 whose message starts with the
//! parameter's name.

use axum::http::{HeaderMap, header};
use jiff::Timestamp;

use crate::domain::Namespace;
use crate::http::ApiError;

/// `namespace=`: a Kubernetes namespace name, or absent.
pub fn namespace(value: Option<String>) -> Result<Option<Namespace>, ApiError> {
    value
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse::<Namespace>().map_err(|e| ApiError::invalid_parameter("namespace", e.rule))
        })
        .transpose()
}

/// `q=`: a case-insensitive search text, trimmed and lower-cased.
pub fn search(value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty()) {
        Some(q) if q.chars().count() > 200 => {
            Err(ApiError::invalid_parameter("q", "at most 200 characters"))
        }
        other => Ok(other),
    }
}

/// An RFC 3339 time (`2026-11-23T10:00:00Z`), or absent.
pub fn time(name: &str, value: Option<String>) -> Result<Option<Timestamp>, ApiError> {
    value
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<Timestamp>().map_err(|_| {
                ApiError::invalid_parameter(
                    name,
                    "must be an RFC 3339 time with an offset, such as 2026-11-23T10:00:00Z",
                )
            })
        })
        .transpose()
}

/// `true` or `false`, or absent (false).
pub fn flag(name: &str, value: Option<String>) -> Result<bool, ApiError> {
    match value.as_deref() {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::invalid_parameter(name, "must be true or false")),
    }
}

/// How a list is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// `format=json|csv` wins; otherwise an `Accept` that names `text/csv`.
    pub fn negotiate(value: Option<String>, headers: &HeaderMap) -> Result<Self, ApiError> {
        match value.as_deref() {
            Some("csv") => Ok(Self::Csv),
            Some("json") => Ok(Self::Json),
            Some("") | None => {
                let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                let csv = accept.is_some_and(|a| {
                    a.split(',')
                        .any(|part| part.split(';').next().map(str::trim) == Some("text/csv"))
                });
                Ok(if csv { Self::Csv } else { Self::Json })
            }
            Some(_) => Err(ApiError::invalid_parameter("format", "must be json or csv")),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn bad_values_name_their_parameter() {
        let message = |err: ApiError| err.to_string();
        assert!(
            message(time("since", Some("yesterday".into())).unwrap_err()).starts_with("since:")
        );
        assert!(time("at", Some("2026-11-23T10:00:00".into())).is_err(), "no offset");
        assert_eq!(
            time("at", Some("2026-11-23T10:00:00+01:00".into())).unwrap(),
            Some("2026-11-23T09:00:00Z".parse().unwrap())
        );
        assert!(
            message(flag("problems", Some("yes".into())).unwrap_err()).starts_with("problems:")
        );
        assert!(
            message(namespace(Some("Not_A_Namespace".into())).unwrap_err())
                .starts_with("namespace:")
        );
        assert!(message(search(Some("x".repeat(201))).unwrap_err()).starts_with("q:"));
        assert_eq!(search(Some("  Cart ".into())).unwrap().as_deref(), Some("cart"));
    }

    #[test]
    fn csv_is_asked_for_by_parameter_or_accept_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(Format::negotiate(None, &headers).unwrap(), Format::Json);
        headers
            .insert(header::ACCEPT, HeaderValue::from_static("text/csv;q=0.9, application/json"));
        assert_eq!(Format::negotiate(None, &headers).unwrap(), Format::Csv);
        assert_eq!(Format::negotiate(Some("json".into()), &headers).unwrap(), Format::Json);
        assert!(Format::negotiate(Some("xml".into()), &headers).is_err());
    }
}
