//! What every function's invocation does around its run: the log lines of what it found.

use crate::tags::Warning;

/// Logs an invalid tag value as it is found (the contract asks for a log line besides the
/// entry under `warnings`) and keeps it for the result.
pub fn warn_all(warnings: &[Warning]) {
    for w in warnings {
        tracing::warn!(resource = %w.resource, key = %w.key, value = %w.value, message = %w.message, "invalid tag value");
    }
}
