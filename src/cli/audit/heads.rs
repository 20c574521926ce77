//! Comparing the heads the scan computed with the heads stored with each seal.

use std::collections::HashMap;
use std::ops::Bound;

use sqlx::PgPool;

use super::hash::seal_leaf;
use super::read::Filtered;
use super::report::{Problem, ProblemKind};
use super::scan::{DoneStream, Key, NewHead, Range, Role, Scan, StoredHeads};
use crate::service::error::any::Result;

impl Scan {
    /// Compares every pending stream with the stored heads of the key range they cover:
    /// after the previous comparison, up to and including the last pending stream (or, on the
    /// last call, up to the end of the scanned range).
    pub(super) async fn flush(&mut self, pool: &PgPool, last: Option<&Range>) -> Result<()> {
        if self.targets.is_empty() {
            return Ok(());
        }
        let upper = match last {
            Some(range) => match &range.end {
                Some(end) => Bound::Excluded(end.clone()),
                None => Bound::Unbounded,
            },
            None => match self.pending.last() {
                Some(d) => Bound::Included(d.key.clone()),
                None => return Ok(()),
            },
        };
        let mut stored: HashMap<Key, StoredHeads> = HashMap::new();
        if self.has_stored {
            stored = stored_heads(pool, &self.compared_upto, &upper).await?;
        }
        let pending = std::mem::take(&mut self.pending);
        for done in pending {
            let rows = stored.remove(&done.key).unwrap_or_default();
            self.compare_stream(&done, &rows);
        }
        // Stored heads of streams that have no event at or below any seal any more.
        let mut missing: Vec<_> = stored.into_iter().collect();
        missing.sort_by(|a, b| a.0.cmp(&b.0));
        for ((t, id), rows) in missing {
            for j in 0..self.order.len() {
                let target = &self.targets[self.order[j]];
                if target.role != Role::Stored {
                    continue;
                }
                let Some(head) = rows.iter().rev().find(|r| r.0 <= target.id) else {
                    continue;
                };
                let p = Problem {
                    kind: ProblemKind::SealStreamMissing,
                    aggregate_type: Some(t.clone()),
                    aggregate_id: Some(id.clone()),
                    sequence: Some(head.1),
                    global_position: None,
                    seal_id: Some(target.id),
                    detail: format!(
                        "the seal recorded this stream with head sequence {}, but the log has no event of it at or below the seal's position: the stream was deleted",
                        head.1
                    ),
                };
                self.report(p);
            }
        }
        if let Bound::Included(upper) = upper {
            self.compared_upto = Bound::Excluded(upper);
        }
        Ok(())
    }

    pub(super) fn compare_stream(&mut self, done: &DoneStream, stored: &StoredHeads) {
        let (t, id) = &done.key;
        let mut k = 0;
        for j in 0..self.order.len() {
            while k + 1 < done.heads.len() && done.heads[k + 1].0 <= j {
                k += 1;
            }
            let computed = done.heads.get(k).filter(|h| h.0 <= j);
            let index = self.order[j];
            let target = &mut self.targets[index];
            if let Some(&(_, seq, hash)) = computed {
                target.streams += 1;
                target.leaves.push(seal_leaf(t, id, seq, &hash));
            }
            let problem = match target.role {
                Role::External => None,
                Role::New => {
                    let previous = stored.last();
                    if let Some(&(_, seq, hash)) = computed {
                        let same = previous.is_some_and(|p| p.1 == seq && p.2 == hash);
                        if !same {
                            self.new_heads.push(NewHead {
                                aggregate_type: t.clone(),
                                aggregate_id: id.clone(),
                                sequence: seq,
                                hash: hash.to_vec(),
                            });
                        }
                    }
                    None
                }
                Role::Stored => {
                    let sealed = stored.iter().rev().find(|r| r.0 <= target.id);
                    compare_head(target.id, computed.map(|c| (c.1, &c.2[..])), sealed)
                }
            };
            if let Some((kind, sequence, detail)) = problem {
                let seal_id = self.targets[index].id;
                self.report(Problem {
                    kind,
                    aggregate_type: Some(t.clone()),
                    aggregate_id: Some(id.clone()),
                    sequence: Some(sequence),
                    global_position: None,
                    seal_id: Some(seal_id),
                    detail,
                });
            }
        }
    }
}

/// Compares a stream's head as of a seal with the head the seal recorded.
pub(super) fn compare_head(
    seal_id: i64,
    computed: Option<(i64, &[u8])>,
    sealed: Option<&(i64, i64, Vec<u8>)>,
) -> Option<(ProblemKind, i64, String)> {
    match (computed, sealed) {
        (None, _) => None, // a stream without covered events left its stored rows unmatched
        (Some((seq, _)), None) => Some((
            ProblemKind::SealUnexpectedStream,
            seq,
            format!("the stream has events up to sequence {seq} at or below the position of seal {seal_id}, which does not know it: events were inserted"),
        )),
        (Some((seq, hash)), Some(&(_, sealed_seq, ref sealed_hash))) => {
            if seq < sealed_seq {
                Some((
                    ProblemKind::SealHeadMismatch,
                    sealed_seq,
                    format!("the seal recorded head sequence {sealed_seq}, but as of the seal's position the stream ends at sequence {seq}: the stream was truncated"),
                ))
            } else if seq > sealed_seq {
                Some((
                    ProblemKind::SealHeadMismatch,
                    seq,
                    format!("the seal recorded head sequence {sealed_seq}, but the stream has events up to sequence {seq} at or below the seal's position: events were inserted"),
                ))
            } else if hash != &sealed_hash[..] {
                Some((
                    ProblemKind::SealHeadMismatch,
                    seq,
                    format!("the hash of head sequence {seq} differs from the seal: the stream was rewritten"),
                ))
            } else {
                None
            }
        }
    }
}

/// Stored seal heads of the streams between `lower` and `upper`.
pub(super) async fn stored_heads(
    pool: &PgPool,
    lower: &Bound<Key>,
    upper: &Bound<Key>,
) -> Result<HashMap<Key, StoredHeads>> {
    let mut filter = Filtered::new(
        "select aggregate_type, aggregate_id, seal_id, head_sequence, head_hash
           from audit_seal_heads",
    );
    filter.key_range(lower, upper);
    filter
        .query
        .push(" order by aggregate_type, aggregate_id, seal_id");
    // Unnamed statements are planned with their values: a generic plan of these range
    // queries can be far slower.
    let query = filter
        .query
        .build_query_as::<(String, String, i64, i64, Vec<u8>)>()
        .persistent(false);
    let rows = query.fetch_all(pool).await?;
    let mut map: HashMap<Key, StoredHeads> = HashMap::new();
    for (t, id, seal, seq, hash) in rows {
        map.entry((t, id)).or_default().push((seal, seq, hash));
    }
    Ok(map)
}
