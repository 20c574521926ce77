//! Why an approval command was refused.

/// Why an approval command was refused. The suggested HTTP status is given on each variant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApprovalError {
    /// The approval was never requested (404).
    #[error("approval not found")]
    NotFound,
    /// `RequestApproval` on an approval that already exists (409).
    #[error("approval already exists")]
    AlreadyExists,
    /// The requested steps are not valid; the text says why (422).
    #[error("invalid approval steps: {0}")]
    InvalidSteps(String),
    /// The approval is already approved, rejected or cancelled (409).
    #[error("the approval is no longer pending")]
    NotPending,
    /// The user is not an approver of the current step nor of any later one (403). This also
    /// covers approvers of earlier, already completed steps only.
    #[error("you are not an approver of this approval")]
    NotAnApprover,
    /// The user approves a later step, not the current one (409).
    #[error("this step is not yours to decide yet")]
    NotYourTurn,
    /// The user has already decided the current step (409).
    #[error("you have already decided this step")]
    AlreadyDecided,
    /// The user already delegated their place on this step, or holds it by delegation and may
    /// not hand it on again (409).
    #[error("this decision has already been delegated once")]
    AlreadyDelegated,
    /// The delegate already has (or had, before delegating it away) a place on this step, or
    /// is the delegator themselves (409).
    #[error("the delegate is already an approver of this step")]
    InvalidDelegate,
    /// The user handed their decision on to someone else and can no longer decide (409).
    #[error("you delegated this decision and can no longer decide it")]
    Delegated,
    /// Cancelling by someone who neither requested the approval, nor requested the ticket,
    /// nor is staff (403).
    #[error("you may not cancel this approval")]
    NotAllowed,
}
