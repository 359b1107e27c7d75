//! Pagination of every list the API serves: `limit` (checked against a
//! maximum) and an opaque `cursor`. Lists read from the table use the
//! store's cursors; lists built in memory (environments, clusters,
//! dashboards, matrix rows) use [`after_key`] cursors over their sort key.

use base64::Engine as _;
use serde::Serialize;

use crate::http::ApiError;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 500;

/// The `limit` and `cursor` of one request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Paging {
    pub fn new(limit: Option<u32>, cursor: Option<String>) -> Result<Self, ApiError> {
        Self::with_default(limit, cursor, DEFAULT_LIMIT)
    }

    /// For lists whose items are large (a matrix row holds a cell per
    /// column), a smaller page by default; the maximum is the same.
    pub fn with_default(
        limit: Option<u32>,
        cursor: Option<String>,
        default: u32,
    ) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(default);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_parameter(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        Ok(Self { limit, cursor: cursor.filter(|c| !c.is_empty()) })
    }

    /// The sort key a cursor of [`page`] points after.
    fn start(&self) -> Result<Option<String>, ApiError> {
        let Some(cursor) = &self.cursor else { return Ok(None) };
        let bad = || ApiError::invalid_parameter("cursor", "not a cursor this list gave out");
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        text.strip_prefix("after:").map(|k| Some(k.to_owned())).ok_or_else(bad)
    }
}

/// A cursor pointing after the item whose sort key is `key`.
pub fn after_key(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("after:{key}"))
}

/// One page of a list: `{items, next}`; `next` is absent on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// The cursor of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The page of `items` (sorted by `key`, keys unique) that `paging` asks for.
pub fn page<T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> String,
    paging: &Paging,
) -> Result<Paged<T>, ApiError> {
    let start = paging.start()?;
    let mut rest = items.into_iter().filter(|item| start.as_ref().is_none_or(|s| key(item) > *s));
    let items: Vec<T> = rest.by_ref().take(paging.limit as usize).collect();
    let next = match (rest.next(), items.last()) {
        (Some(_), Some(last)) => Some(after_key(&key(last))),
        _ => None,
    };
    Ok(Paged { items, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_the_list_once_and_end_without_a_cursor() {
        let items: Vec<String> = (0..7).map(|i| format!("env-{i}")).collect();
        let mut paging = Paging::new(Some(3), None).unwrap();
        let mut seen = Vec::new();
        loop {
            let page = page(items.clone(), Clone::clone, &paging).unwrap();
            assert!(page.items.len() <= 3);
            seen.extend(page.items);
            match page.next {
                Some(next) => paging.cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn bad_limits_and_cursors_name_the_parameter() {
        let err = Paging::new(Some(0), None).unwrap_err();
        assert_eq!(err.to_string(), "limit: must be between 1 and 500");
        let err = Paging::new(Some(501), None).unwrap_err();
        assert_eq!(err.code(), "invalid_parameter");
        let paging = Paging::new(None, Some("not-base64!".into())).unwrap();
        let err = page(vec![1], |i| i.to_string(), &paging).unwrap_err();
        assert_eq!(err.to_string(), "cursor: not a cursor this list gave out");
        let foreign = Paging::new(None, Some(after_key("x").replace('Y', "Z"))).unwrap();
        assert!(page(vec![1], |i| i.to_string(), &foreign).is_err());
    }
}
