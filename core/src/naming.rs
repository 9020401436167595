//! Names and descriptions of new backups.

use chrono::{DateTime, Utc};

/// AMI names: 3 to 128 characters of letters, digits and `( ) [ ] space . / - ' @ _`.
pub const AMI_NAME_MAX: usize = 128;

pub fn ami_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c)
}

/// The most characters of a request id an on-demand AMI name carries: Lambda's are 36.
pub const REQUEST_ID_IN_NAME_MAX: usize = 64;

/// `{Name}-{instance-id}-{yyyymmddThhmmZ}`, or `{instance-id}-{...}` without a Name tag; on
/// demand, followed by `-{request-id}`.
///
/// The instance id keeps names unique between instances that share a Name; the timestamp to
/// the minute makes a second CreateImage for the same instance in the same minute (a duplicate
/// event racing the first) fail with `InvalidAMIName.Duplicate` instead of making a second AMI.
/// An on-demand backup is made whatever was made before: its request id keeps it apart from
/// the minute's other backups, while a retry of the same request still collides with its own.
/// The Name part is cut so that the whole fits in [`AMI_NAME_MAX`].
pub fn ami_name(
    name_tag: Option<&str>,
    instance_id: &str,
    now: DateTime<Utc>,
    request_id: Option<&str>,
) -> String {
    let stamp = now.format("%Y%m%dT%H%MZ").to_string();
    let id: String = instance_id.chars().map(clean).collect();
    let mut suffix = format!("{id}-{stamp}");
    let request: String = request_id
        .unwrap_or("")
        .trim()
        .chars()
        .map(clean)
        .take(REQUEST_ID_IN_NAME_MAX)
        .collect();
    if !request.is_empty() {
        suffix = format!("{suffix}-{request}");
    }
    let name = ami_name_part(name_tag.unwrap_or(""), suffix.len() + 1);
    if name.is_empty() {
        suffix
    } else {
        format!("{name}-{suffix}")
    }
}

fn clean(c: char) -> char {
    if ami_name_char(c) { c } else { '_' }
}

/// `text` as the start of an AMI name that leaves `reserved` characters for what follows:
/// trimmed, characters AMI names do not allow replaced by `_`, cut to fit.
pub fn ami_name_part(text: &str, reserved: usize) -> String {
    let part: String = text
        .trim()
        .chars()
        .map(clean)
        .take(AMI_NAME_MAX.saturating_sub(reserved))
        .collect();
    part.trim_end().to_string()
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[..end]
}

/// A snapshot's description: which volume, and the instance it was attached to.
pub fn snapshot_description(
    volume_id: &str,
    instance_id: Option<&str>,
    deployment: &str,
) -> String {
    match instance_id {
        Some(i) => format!("{deployment} backup of {volume_id} attached to {i}"),
        None => format!("{deployment} backup of {volume_id}"),
    }
}

pub fn image_description(instance_id: &str, deployment: &str) -> String {
    format!("{deployment} backup of {instance_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::parse_time;

    fn now() -> DateTime<Utc> {
        parse_time("2026-11-25T03:04:59Z").unwrap()
    }

    #[test]
    fn name_tag_id_and_minute() {
        assert_eq!(
            ami_name(Some("web-01"), "i-0abc", now(), None),
            "web-01-i-0abc-20261125T0304Z"
        );
        assert_eq!(
            ami_name(None, "i-0abc", now(), None),
            "i-0abc-20261125T0304Z"
        );
        assert_eq!(
            ami_name(Some("  "), "i-0abc", now(), None),
            "i-0abc-20261125T0304Z"
        );
    }

    #[test]
    fn disallowed_characters_are_replaced() {
        assert_eq!(
            ami_name(Some("db:primary #1 (eu) é"), "i-1", now(), None),
            "db_primary _1 (eu) _-i-1-20261125T0304Z"
        );
    }

    #[test]
    fn long_names_are_cut_to_128() {
        let long = "x".repeat(300);
        let name = ami_name(Some(&long), "i-0123456789abcdef0", now(), None);
        assert_eq!(name.len(), 128);
        assert!(name.ends_with("-i-0123456789abcdef0-20261125T0304Z"));
        assert!(name.chars().all(ami_name_char));
    }

    #[test]
    fn an_on_demand_name_carries_its_request_so_two_requests_in_a_minute_differ() {
        let request = "8a5f1f3e-0000-4000-8000-000000000001";
        assert_eq!(
            ami_name(Some("web-01"), "i-0abc", now(), Some(request)),
            format!("web-01-i-0abc-20261125T0304Z-{request}")
        );
        assert_ne!(
            ami_name(Some("web-01"), "i-0abc", now(), Some("request-a")),
            ami_name(Some("web-01"), "i-0abc", now(), Some("request-b"))
        );
        // A retry of the same request collides with its own AMI's name.
        assert_eq!(
            ami_name(Some("web-01"), "i-0abc", now(), Some(request)),
            ami_name(Some("web-01"), "i-0abc", now(), Some(request))
        );
        assert_eq!(
            ami_name(None, "i-0abc", now(), Some("  ")),
            "i-0abc-20261125T0304Z"
        );
    }

    #[test]
    fn an_on_demand_name_is_cleaned_and_cut_to_128_keeping_its_request() {
        let long = "x".repeat(300);
        let request = format!("req#{}", "7".repeat(100));
        let name = ami_name(Some(&long), "i-0123456789abcdef0", now(), Some(&request));
        assert_eq!(name.len(), AMI_NAME_MAX);
        assert!(name.chars().all(ami_name_char), "{name}");
        let kept = format!("req_{}", "7".repeat(REQUEST_ID_IN_NAME_MAX - 4));
        assert!(
            name.ends_with(&format!("-i-0123456789abcdef0-20261125T0304Z-{kept}")),
            "{name}"
        );
        assert!(name.starts_with("xxx"), "{name}");
    }

    #[test]
    fn descriptions_name_the_source() {
        assert_eq!(
            snapshot_description("vol-1", Some("i-1"), "d"),
            "d backup of vol-1 attached to i-1"
        );
        assert_eq!(
            snapshot_description("vol-1", None, "d"),
            "d backup of vol-1"
        );
    }
}
