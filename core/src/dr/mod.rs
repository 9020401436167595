//! The isolated DR account: what a home deployment shares with it and tells it
//! ([`share`]; the event is [`crate::replicate::notice`]), and what a vault deployment accepts,
//! copies and locks ([`vault`]); whether the KMS keys of both sides will do ([`preflight`], the
//! checks of `ec2-backup check-dr`).
//! Pure decisions over plain types; `now` is passed in.
//!
//! Tags are not shared across accounts: what identifies a shared backup (its source, name,
//! region, creation time) travels in the `Backup Shared` event and in the backup's name and
//! description, never in its tags.

pub mod preflight;
pub mod share;
pub mod vault;

pub use crate::replicate::notice::{
    Claimed, DETAIL_TYPE, EVENT_SOURCE, SharedDetail, SharedNotice,
};
