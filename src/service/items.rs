//! The items table (configuration items and assets; not event-sourced): queries, the
//! optimistic `version` behind `If-Match`, and the check that tickets link to real items.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{FromRow, PgPool};
use utoipa::{IntoParams, ToSchema};

use crate::service::error::{Error, FieldError, Validator};
use crate::service::paging::Page;

/// Where an item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Active,
    Maintenance,
    Retired,
}

impl ItemStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Active => "active",
            ItemStatus::Maintenance => "maintenance",
            ItemStatus::Retired => "retired",
        }
    }

    /// Parses the stored and wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(ItemStatus::Active),
            "maintenance" => Some(ItemStatus::Maintenance),
            "retired" => Some(ItemStatus::Retired),
            _ => None,
        }
    }
}

impl TryFrom<String> for ItemStatus {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        ItemStatus::parse(&text).ok_or_else(|| format!("unknown item status '{text}'"))
    }
}

/// A configuration item or asset.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Item {
    pub id: i64,
    pub name: String,
    /// What sort of thing it is (`laptop`, `server`, `service`, ...), lowercase.
    pub kind: String,
    pub description: String,
    /// Free-form facts (serial number, location, ...): a JSON object.
    #[schema(value_type = Object)]
    pub attributes: Value,
    pub owner_id: Option<i64>,
    /// The owner's display name.
    #[sqlx(skip)]
    pub owner_name: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: ItemStatus,
    /// Increases with every change; send it back in `If-Match` to change or delete the item.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, name, kind, description, attributes, owner_id, status, version, created_at, updated_at";

/// The fields of a new item, validated.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub name: String,
    pub kind: String,
    pub description: String,
    pub attributes: Value,
    pub owner_id: Option<i64>,
    pub status: ItemStatus,
}

/// A change to an item (absent fields stay as they are; `owner_id: Some(None)` clears it).
#[derive(Debug, Clone, Default)]
pub struct ItemChange {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub attributes: Option<Value>,
    pub owner_id: Option<Option<i64>>,
    pub status: Option<ItemStatus>,
}

impl ItemChange {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.kind.is_none()
            && self.description.is_none()
            && self.attributes.is_none()
            && self.owner_id.is_none()
            && self.status.is_none()
    }
}

/// Checks the fields an item may carry, collecting every problem.
pub fn validate(
    v: &mut Validator,
    name: Option<&str>,
    kind: Option<&str>,
    description: Option<&str>,
    attributes: Option<&Value>,
) {
    if let Some(name) = name {
        let n = name.trim().chars().count();
        v.check(n >= 1, "name", "Name is required");
        v.check(n <= 200, "name", "Name must be at most 200 characters");
    }
    if let Some(kind) = kind {
        let n = kind.trim().chars().count();
        v.check(n >= 1, "kind", "Kind is required");
        v.check(n <= 50, "kind", "Kind must be at most 50 characters");
    }
    if let Some(d) = description {
        v.check(
            d.chars().count() <= 10_000,
            "description",
            "Description must be at most 10000 characters",
        );
    }
    if let Some(a) = attributes {
        v.check(
            a.is_object(),
            "attributes",
            "Attributes must be a JSON object",
        );
        v.check(
            a.to_string().len() <= 16 * 1024,
            "attributes",
            "Attributes must be at most 16 KiB of JSON",
        );
    }
}

/// 422 unless `owner_id` names an active user.
pub async fn check_owner(pool: &PgPool, owner_id: Option<i64>) -> Result<(), Error> {
    let Some(owner) = owner_id else {
        return Ok(());
    };
    let ok = crate::service::users::find_by_id(pool, owner)
        .await?
        .is_some_and(|u| u.is_active);
    if ok {
        Ok(())
    } else {
        Err(Error::field("owner_id", "The owner must be an active user"))
    }
}

/// 422 (loc `["body", "item_ids"]`) unless every id names an existing item.
/// Called when a ticket is opened or its `item_ids` change.
pub async fn check_items_exist(pool: &PgPool, ids: &[i64]) -> Result<(), Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let found: Vec<i64> = sqlx::query_scalar("select id from items where id = any($1)")
        .bind(ids)
        .fetch_all(pool)
        .await?;
    let mut missing: Vec<i64> = ids.iter().copied().filter(|i| !found.contains(i)).collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing.iter().map(i64::to_string).collect();
    Err(Error::Validation(vec![FieldError::body(
        "item_ids",
        format!("No such item: {}", list.join(", ")),
        "value_error",
    )]))
}

/// Inserts an item.
pub async fn insert(pool: &PgPool, item: &NewItem) -> Result<Item, Error> {
    Ok(sqlx::query_as(&format!(
        "insert into items (name, kind, description, attributes, owner_id, status)
         values ($1, $2, $3, $4, $5, $6) returning {COLUMNS}"
    ))
    .bind(&item.name)
    .bind(&item.kind)
    .bind(&item.description)
    .bind(&item.attributes)
    .bind(item.owner_id)
    .bind(item.status.as_str())
    .fetch_one(pool)
    .await?)
}

/// Finds an item.
pub async fn find(pool: &PgPool, id: i64) -> Result<Option<Item>, Error> {
    Ok(
        sqlx::query_as(&format!("select {COLUMNS} from items where id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

fn stale(current: i64) -> Error {
    Error::PreconditionFailed(format!(
        "The item has changed since you loaded it (it is at version {current}); reload and try again"
    ))
}

/// Changes an item if it is still at `expected` (else 412 and nothing changes).
pub async fn update(
    pool: &PgPool,
    id: i64,
    expected: i64,
    change: &ItemChange,
) -> Result<Item, Error> {
    if change.is_empty() {
        let item = find(pool, id)
            .await?
            .ok_or_else(|| Error::not_found("Item"))?;
        return if item.version == expected {
            Ok(item)
        } else {
            Err(stale(item.version))
        };
    }
    let updated: Option<Item> = sqlx::query_as(&format!(
        "update items set
            name = coalesce($3, name), kind = coalesce($4, kind),
            description = coalesce($5, description), attributes = coalesce($6, attributes),
            owner_id = case when $7 then $8 else owner_id end, status = coalesce($9, status),
            version = version + 1, updated_at = now()
          where id = $1 and version = $2
          returning {COLUMNS}"
    ))
    .bind(id)
    .bind(expected)
    .bind(&change.name)
    .bind(&change.kind)
    .bind(&change.description)
    .bind(&change.attributes)
    .bind(change.owner_id.is_some())
    .bind(change.owner_id.flatten())
    .bind(change.status.map(ItemStatus::as_str))
    .fetch_optional(pool)
    .await?;
    match updated {
        Some(item) => Ok(item),
        None => match find(pool, id).await? {
            Some(item) => Err(stale(item.version)),
            None => Err(Error::not_found("Item")),
        },
    }
}

/// Deletes an item if it is still at `expected` (else 412) and no live ticket links to it
/// (else 409: unlink it first, or retire it instead).
pub async fn delete(pool: &PgPool, id: i64, expected: i64) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    let version: i64 = sqlx::query_scalar("select version from items where id = $1 for update")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("Item"))?;
    if version != expected {
        return Err(stale(version));
    }
    let linked: i64 = sqlx::query_scalar(
        "select count(*) from rm_tickets where item_ids @> array[$1]::bigint[] and not deleted",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if linked > 0 {
        return Err(Error::conflict(format!(
            "{linked} ticket(s) refer to this item: unlink it from them first, or retire it"
        )));
    }
    sqlx::query("delete from items where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Filters and paging of `GET /items`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemListQueryParams {
    /// One kind or several, comma-separated.
    pub kind: Option<String>,
    /// One status or several, comma-separated.
    pub status: Option<String>,
    /// Words matched against the name and description (case-insensitive, substring).
    pub q: Option<String>,
    pub owner_id: Option<i64>,
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

/// Lists items, ordered by name.
pub async fn list(pool: &PgPool, query: &ItemListQueryParams) -> Result<Page<Item>, Error> {
    let mut v = Validator::default();
    let (page, size, offset) = crate::service::paging::paging(&mut v, query.page, query.size);
    let split = |raw: &Option<String>| -> Vec<String> {
        raw.iter()
            .flat_map(|r| r.split(','))
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let kinds = split(&query.kind);
    let statuses = split(&query.status);
    for s in &statuses {
        v.check_query(
            ItemStatus::parse(s).is_some(),
            "status",
            &format!("Unknown status '{s}'"),
        );
    }
    let pattern = crate::service::paging::contains_pattern(&mut v, query.q.as_deref());
    v.finish()?;
    let kinds = (!kinds.is_empty()).then_some(kinds);
    let statuses = (!statuses.is_empty()).then_some(statuses);
    let filter = "($1::text[] is null or kind = any($1))
          and ($2::text[] is null or status = any($2))
          and ($3::text is null or (name || ' ' || description) ilike $3)
          and ($4::bigint is null or owner_id = $4)";
    let items: Vec<Item> = sqlx::query_as(&format!(
        "select {COLUMNS} from items where {filter} order by lower(name), id limit $5 offset $6"
    ))
    .bind(&kinds)
    .bind(&statuses)
    .bind(&pattern)
    .bind(query.owner_id)
    .bind(size)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = if offset == 0 && (items.len() as i64) < size {
        items.len() as i64
    } else {
        sqlx::query_scalar(&format!("select count(*) from items where {filter}"))
            .bind(&kinds)
            .bind(&statuses)
            .bind(&pattern)
            .bind(query.owner_id)
            .fetch_one(pool)
            .await?
    };
    Ok(Page::new(items, total, page, size))
}

impl crate::service::names::Named for Item {
    fn people(&self, ids: &mut Vec<i64>) {
        ids.extend(self.owner_id);
    }
    fn take_names(&mut self, names: &crate::service::names::NameMap) {
        self.owner_name = names.of(self.owner_id);
    }
}
