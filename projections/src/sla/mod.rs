//! Service-level agreements: the policy and its business calendar (`policy`), the clock each
//! ticket runs on, shared by the read models that show it (`clock`), and where a ticket stands
//! against its targets at a given moment (`standing`).

pub mod clock;
pub mod policy;
pub mod standing;

pub use clock::{
    current_policy, policy_in_force, Phase, PolicyContext, SlaClock, SlaMarks, OPEN_STATUSES,
};
pub use policy::{Calendar, SlaPolicy, Target, US};
pub use standing::{Sla, SlaFacts, SlaState, SlaTarget};
