//! Enumerations shared by the aggregates, the read models and the HTTP layer.
//! Their serialized (lowercase snake_case) names are stored in events: never rename them.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored and wire name.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> Result<Self, String> {
                $name::parse(&text).ok_or_else(|| format!("unknown {} '{}'", stringify!($name), text))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Where a ticket is in its life.
    TicketStatus {
        Open => "open",
        InProgress => "in_progress",
        Pending => "pending",
        Resolved => "resolved",
        Closed => "closed",
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// How urgent a ticket is; declaration order is the sort order.
    Priority {
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
);

string_enum!(
    /// What kind of request a ticket is.
    TicketType {
        Issue => "issue",
        Incident => "incident",
        ServiceRequest => "service_request",
        ChangeRequest => "change_request",
        Question => "question",
    }
);

string_enum!(
    /// What a user may do; declaration order is the privilege order.
    Role {
        Requester => "requester",
        Agent => "agent",
        Manager => "manager",
        Admin => "admin",
    }
);

string_enum!(
    /// The approval state a ticket carries (`none` until an approval is requested).
    ApprovalStatus {
        None => "none",
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
        Cancelled => "cancelled",
    }
);

impl TicketStatus {
    /// The states a ticket may move to from this one, ignoring approvals.
    pub fn next_states(self) -> &'static [TicketStatus] {
        use TicketStatus::*;
        match self {
            Open => &[InProgress, Cancelled],
            InProgress => &[Pending, Resolved, Cancelled],
            Pending => &[InProgress, Resolved, Cancelled],
            Resolved => &[Closed, Open, Cancelled],
            Closed | Cancelled => &[],
        }
    }

    /// Closed and cancelled tickets accept no further change.
    pub fn is_terminal(self) -> bool {
        matches!(self, TicketStatus::Closed | TicketStatus::Cancelled)
    }
}

impl Role {
    /// Agents, managers and admins work tickets; requesters only raise them.
    pub fn is_staff(self) -> bool {
        self >= Role::Agent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for s in TicketStatus::ALL {
            let json = serde_json::to_string(s).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(TicketStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(TicketType::ServiceRequest.as_str(), "service_request");
        assert!(Priority::Critical > Priority::Low);
        assert!(Role::Admin.is_staff() && !Role::Requester.is_staff());
    }
}
