//! Which fields of which events are personal, and whose key seals them (`docs/privacy.md` lists
//! the same). Paths are JSON pointers into the stored payload; the metadata's `client_ip` and
//! `user_agent` are sealed under the acting user's key.

/// Whose key seals the fields of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The user whose id is at this pointer of the payload.
    Field(&'static str),
    /// The user in the metadata's `user_id` (who acted).
    Actor,
    /// The requester of the ticket the event belongs to (the title and description are about
    /// them, even when an agent types them).
    Requester,
    /// The author of the comment whose id is at this pointer (staff may edit others' comments:
    /// the text stays the author's).
    CommentAuthor(&'static str),
}

/// The personal fields of one event type.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub aggregate_type: &'static str,
    pub event_type: &'static str,
    pub fields: &'static [&'static str],
    pub owner: Owner,
}

/// The metadata fields sealed under the actor's key.
pub const METADATA_FIELDS: &[&str] = &["client_ip", "user_agent"];

/// Every event type with personal fields.
pub const RULES: &[Rule] = &[
    Rule {
        aggregate_type: "ticket",
        event_type: "TicketOpened",
        fields: &["/TicketOpened/title", "/TicketOpened/description"],
        owner: Owner::Field("/TicketOpened/requester_id"),
    },
    Rule {
        aggregate_type: "ticket",
        event_type: "TicketUpdated",
        fields: &[
            "/TicketUpdated/changes/title",
            "/TicketUpdated/changes/description",
        ],
        owner: Owner::Requester,
    },
    Rule {
        aggregate_type: "ticket",
        event_type: "TicketStatusChanged",
        fields: &["/TicketStatusChanged/reason"],
        owner: Owner::Actor,
    },
    Rule {
        aggregate_type: "ticket",
        event_type: "TicketDeleted",
        fields: &["/TicketDeleted/reason"],
        owner: Owner::Actor,
    },
    Rule {
        aggregate_type: "ticket",
        event_type: "CommentAdded",
        fields: &["/CommentAdded/content"],
        owner: Owner::Field("/CommentAdded/author_id"),
    },
    Rule {
        aggregate_type: "ticket",
        event_type: "CommentEdited",
        fields: &["/CommentEdited/content", "/CommentEdited/previous_content"],
        owner: Owner::CommentAuthor("/CommentEdited/comment_id"),
    },
    Rule {
        aggregate_type: "ticket",
        event_type: "AttachmentAdded",
        fields: &["/AttachmentAdded/filename"],
        owner: Owner::Field("/AttachmentAdded/uploaded_by"),
    },
    Rule {
        aggregate_type: "approval",
        event_type: "ApprovalRequested",
        fields: &["/ApprovalRequested/reason"],
        owner: Owner::Field("/ApprovalRequested/requested_by"),
    },
    Rule {
        aggregate_type: "approval",
        event_type: "DecisionRecorded",
        fields: &["/DecisionRecorded/comment"],
        owner: Owner::Field("/DecisionRecorded/approver_id"),
    },
    Rule {
        aggregate_type: "approval",
        event_type: "DecisionDelegated",
        fields: &["/DecisionDelegated/comment"],
        owner: Owner::Field("/DecisionDelegated/from_user_id"),
    },
];

/// The rule of an event type, if it has personal fields.
pub fn rule(aggregate_type: &str, event_type: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.aggregate_type == aggregate_type && r.event_type == event_type)
}
