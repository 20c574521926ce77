//! Pages of results: the `page`/`size` checks every list shares, and `ilike` patterns.

use serde::Serialize;
use utoipa::ToSchema;

use crate::service::error::Validator;

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub size: i64,
    pub pages: i64,
    /// False when `total` is the planner's estimate (searches matching thousands of tickets).
    pub total_exact: bool,
}

impl<T> Page<T> {
    /// Builds a page from its items and the total.
    pub fn new(items: Vec<T>, total: i64, page: i64, size: i64) -> Self {
        Page {
            items,
            total,
            page,
            size,
            pages: if total == 0 {
                0
            } else {
                (total + size - 1) / size
            },
            total_exact: true,
        }
    }
}

/// Checks `page` (≥ 1) and `size` (1..=100) and returns (page, size, offset).
pub fn paging(v: &mut Validator, page: Option<i64>, size: Option<i64>) -> (i64, i64, i64) {
    let page = page.unwrap_or(1);
    let size = size.unwrap_or(20);
    v.check_query(page >= 1, "page", "page must be 1 or more");
    v.check_query(page <= 1_000_000, "page", "page is too large");
    v.check_query(
        (1..=100).contains(&size),
        "size",
        "size must be between 1 and 100",
    );
    let page = page.clamp(1, 1_000_000);
    let size = size.clamp(1, 100);
    (page, size, (page - 1) * size)
}

/// Checks a free-text `q` (at most 100 characters) and turns it into an `ilike` pattern
/// matching it anywhere: `%` and `_` in it are literal characters, not wildcards.
pub fn contains_pattern(v: &mut Validator, q: Option<&str>) -> Option<String> {
    let q = q.map(str::trim).filter(|q| !q.is_empty())?;
    v.check_query(
        q.chars().count() <= 100,
        "q",
        "q must be at most 100 characters",
    );
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Some(format!("%{escaped}%"))
}
