//! Reads of the approvals read model: the approval list and an approver's inbox.

use sqlx::{PgPool, Postgres, QueryBuilder};

use super::ApprovalRow;

/// Which approvals a list shows, and its page.
#[derive(Debug, Default, Clone)]
pub struct ApprovalFilter {
    /// Only the approvals whose current step waits on this user, the longest-waiting last.
    pub waiting_on: Option<i64>,
    /// Only the approvals this user takes part in (see [`super::participants`]).
    pub participant: Option<i64>,
    /// `pending`, `approved`, `rejected` or `cancelled` (any of them).
    pub statuses: Vec<String>,
    pub ticket_id: Option<i64>,
    pub offset: i64,
    pub size: i64,
}

impl ApprovalFilter {
    /// `<select> from <tables> where …`
    fn query(&self, select: &str) -> QueryBuilder<'static, Postgres> {
        let mut qb = QueryBuilder::new(select);
        match self.waiting_on {
            Some(user) => {
                qb.push(" from rm_approval_inbox i join rm_approvals a on a.id = i.approval_id")
                    .push(" where i.user_id = ")
                    .push_bind(user);
            }
            None => {
                qb.push(" from rm_approvals a where true");
            }
        }
        if let Some(user) = self.participant {
            qb.push(" and a.participant_ids @> ").push_bind(vec![user]);
        }
        if !self.statuses.is_empty() {
            qb.push(" and a.status = any(")
                .push_bind(self.statuses.clone())
                .push(")");
        }
        if let Some(ticket_id) = self.ticket_id {
            qb.push(" and a.ticket_id = ").push_bind(ticket_id);
        }
        qb
    }

    fn order(&self) -> &'static str {
        match self.waiting_on {
            Some(_) => " order by i.since desc, i.approval_id",
            None => " order by a.created_at desc, a.id desc",
        }
    }
}

/// One page of approvals, newest first (an inbox: the longest-waiting last), and the total.
pub async fn list_approvals(
    pool: &PgPool,
    filter: &ApprovalFilter,
) -> Result<(Vec<ApprovalRow>, i64), sqlx::Error> {
    let mut qb = filter.query("select a.*");
    qb.push(filter.order())
        .push(" limit ")
        .push_bind(filter.size)
        .push(" offset ")
        .push_bind(filter.offset);
    let rows: Vec<ApprovalRow> = qb.build_query_as().fetch_all(pool).await?;
    if filter.offset == 0 && (rows.len() as i64) < filter.size {
        let total = rows.len() as i64;
        return Ok((rows, total));
    }
    let total: i64 = filter
        .query("select count(*)")
        .build_query_scalar()
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}
