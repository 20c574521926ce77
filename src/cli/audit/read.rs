//! Reading the log: the key space cut into ranges, each read page by page on its own connection.

use std::ops::Bound;
use std::sync::Arc;

use futures::TryStreamExt;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::report::Problem;
use super::scan::{Key, Range, Scan, Target};
use super::ReadArgs;
use crate::cli::progress::Progress;
use crate::service::error::any::Result;

/// A query whose `where` clause is under construction: each condition is joined with `and`.
pub(super) struct Filtered<'a> {
    pub(super) query: QueryBuilder<'a, Postgres>,
    conditions: usize,
}

impl<'a> Filtered<'a> {
    /// Starts `select ... from ...`.
    pub(super) fn new(select: &str) -> Self {
        Filtered {
            query: QueryBuilder::new(select),
            conditions: 0,
        }
    }

    /// Starts the next condition.
    pub(super) fn and(&mut self) -> &mut QueryBuilder<'a, Postgres> {
        let joint = if self.conditions == 0 {
            " where "
        } else {
            " and "
        };
        self.conditions += 1;
        self.query.push(joint)
    }

    /// Limits the rows to those after `last` (a stream key and sequence) and before `end`
    /// (which is `range_end`, excluded, when there is one).
    pub(super) fn after(
        &mut self,
        (t, id, seq): &'a (String, String, i64),
        range_end: &'a Option<Key>,
        end: &'a Bound<Key>,
    ) {
        match range_end {
            // The usual case: the rest of the range is in the same aggregate type.
            Some((end_t, end_id)) if end_t == t => {
                self.and()
                    .push("aggregate_type = ")
                    .push_bind(t.as_str())
                    .push(" and (aggregate_id, sequence) > (")
                    .push_bind(id.as_str())
                    .push(", ")
                    .push_bind(*seq)
                    .push(") and aggregate_id < ")
                    .push_bind(end_id.as_str());
            }
            _ => {
                self.and()
                    .push("aggregate_type >= ")
                    .push_bind(t.as_str())
                    .push(" and (aggregate_type, aggregate_id, sequence) > (")
                    .push_bind(t.as_str())
                    .push(", ")
                    .push_bind(id.as_str())
                    .push(", ")
                    .push_bind(*seq)
                    .push(")");
                self.key_range(&Bound::Unbounded, end);
            }
        }
    }

    /// Limits the streams to those between two bounds, in a form whose both ends PostgreSQL's
    /// b-tree uses to start and stop (a row comparison alone stops the scan only on its
    /// first column).
    pub(super) fn key_range(&mut self, lower: &'a Bound<Key>, upper: &'a Bound<Key>) {
        fn parts(b: &Bound<Key>, lower: bool) -> Option<(&Key, &'static str)> {
            match (b, lower) {
                (Bound::Unbounded, _) => None,
                (Bound::Included(k), true) => Some((k, ">=")),
                (Bound::Excluded(k), true) => Some((k, ">")),
                (Bound::Included(k), false) => Some((k, "<=")),
                (Bound::Excluded(k), false) => Some((k, "<")),
            }
        }
        match (parts(lower, true), parts(upper, false)) {
            (Some((lo, lo_op)), Some((hi, hi_op))) if lo.0 == hi.0 => {
                self.and()
                    .push("aggregate_type = ")
                    .push_bind(lo.0.as_str())
                    .push(format_args!(" and aggregate_id {lo_op} "))
                    .push_bind(lo.1.as_str())
                    .push(format_args!(" and aggregate_id {hi_op} "))
                    .push_bind(hi.1.as_str());
            }
            (lo, hi) => {
                for (bound, scalar) in [(lo, ">="), (hi, "<=")] {
                    if let Some((k, op)) = bound {
                        self.and()
                            .push(format_args!("aggregate_type {scalar} "))
                            .push_bind(k.0.as_str())
                            .push(format_args!(" and (aggregate_type, aggregate_id) {op} ("))
                            .push_bind(k.0.as_str())
                            .push(", ")
                            .push_bind(k.1.as_str())
                            .push(")");
                    }
                }
            }
        }
    }
}

/// Cuts the key space into up to `jobs` ranges of similar size, at stream keys sampled from
/// the log. A poor sample only costs balance, never correctness.
pub(super) async fn split(pool: &PgPool, jobs: usize) -> Result<Vec<Range>> {
    if jobs <= 1 {
        return Ok(vec![Range::default()]);
    }
    let (mut estimate,): (f32,) =
        sqlx::query_as("select reltuples from pg_class where oid = 'events'::regclass")
            .fetch_one(pool)
            .await?;
    if estimate < 0.0 {
        // Never analysed: count, up to a bound.
        let (n,): (i64,) =
            sqlx::query_as("select count(*) from (select 1 from events limit 100000) as e")
                .fetch_one(pool)
                .await?;
        estimate = if n < 100_000 { n as f32 } else { 10_000_000.0 };
    }
    // About 2,000 sampled rows.
    let percent = (2_000.0 * 100.0 / estimate.max(1.0)).clamp(0.001, 100.0);
    let keys: Vec<Key> = sqlx::query_as(
        "select distinct aggregate_type, aggregate_id from events tablesample system ($1)
          order by aggregate_type, aggregate_id",
    )
    .bind(percent)
    .fetch_all(pool)
    .await?;
    let mut cuts: Vec<Key> = Vec::new();
    for i in 1..jobs {
        if let Some(k) = keys.get(i * keys.len() / jobs) {
            if cuts.last() != Some(k) {
                cuts.push(k.clone());
            }
        }
    }
    let mut ranges = Vec::with_capacity(cuts.len() + 1);
    let mut start = None;
    for cut in cuts {
        ranges.push(Range {
            start: start.take(),
            end: Some(cut.clone()),
        });
        start = Some(cut);
    }
    ranges.push(Range { start, end: None });
    Ok(ranges)
}

/// Reads one range of the log, page by page.
pub(super) async fn scan_range(
    pool: &PgPool,
    mut scan: Scan,
    range: Range,
    page: i64,
    progress: &Progress,
) -> Result<Scan> {
    const COLUMNS: &str =
        "select aggregate_type, aggregate_id, sequence, event_type, event_version,
            payload::text, metadata::text, recorded_at, global_position, transaction_id::text,
            prev_hash, hash
       from events";
    scan.compared_upto = match &range.start {
        Some(k) => Bound::Included(k.clone()),
        None => Bound::Unbounded,
    };
    let start = scan.compared_upto.clone();
    let end = match &range.end {
        Some(k) => Bound::Excluded(k.clone()),
        None => Bound::Unbounded,
    };
    let mut after: Option<(String, String, i64)> = None;
    loop {
        let mut filter = Filtered::new(COLUMNS);
        match &after {
            None => filter.key_range(&start, &end),
            Some(last) => filter.after(last, &range.end, &end),
        }
        filter
            .query
            .push(" order by aggregate_type, aggregate_id, sequence limit ")
            .push_bind(page);
        let query = filter.query.build().persistent(false);
        let mut rows = query.fetch(pool);
        let mut count = 0;
        while let Some(row) = rows.try_next().await? {
            scan.event(&row)?;
            count += 1;
        }
        drop(rows);
        progress.add(count as u64);
        if count < page {
            scan.finish_stream();
            scan.flush(pool, Some(&range)).await?;
            break;
        }
        after = Some((scan.cur_type.clone(), scan.cur_id.clone(), scan.last_seq));
        scan.flush(pool, None).await?;
    }
    Ok(scan)
}

/// Reads the whole log once, `jobs` ranges in parallel, checking the chain and the targets.
/// `early` problems are listed first.
pub(super) async fn scan(
    pool: &PgPool,
    targets: Vec<Target>,
    early: Vec<Problem>,
    read: ReadArgs,
) -> Result<Scan> {
    let ranges = split(pool, read.jobs()).await?;
    let page = read.page_size();
    tracing::debug!(?ranges, "reading the log in key ranges");
    let (total,): (Option<i64>,) = sqlx::query_as("select max(global_position) from events")
        .fetch_one(pool)
        .await?;
    let progress = Arc::new(Progress::new(
        "audit",
        "events",
        Some(total.unwrap_or(0).max(0) as u64),
    ));
    let mut handles = Vec::with_capacity(ranges.len());
    for range in ranges {
        let pool = pool.clone();
        let part = Scan::new(targets.clone());
        let progress = progress.clone();
        handles.push(tokio::spawn(async move {
            scan_range(&pool, part, range, page, &progress)
                .await
                .map_err(|e| e.to_string())
        }));
    }
    let mut all = Scan::new(targets);
    for p in early {
        all.report(p);
    }
    for handle in handles {
        let part = handle.await.map_err(|e| e.to_string())??;
        all.merge(part);
    }
    all.finish_targets();
    progress.finish(progress.done());
    Ok(all)
}
