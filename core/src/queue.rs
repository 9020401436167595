//! A work queue's URL: its shape, and whether the queue is FIFO.

/// DelaySeconds is at most 15 minutes.
pub const MAX_DELAY_SECONDS: u32 = 900;

/// A FIFO queue's name ends in `.fifo`.
pub fn is_fifo(url: &str) -> bool {
    url.ends_with(".fifo")
}

/// A queue URL as SQS gives it: `http(s)://HOST/ACCOUNT/NAME`, the account 12 digits, the
/// name 1 to 80 letters, digits, `-` or `_` (`.fifo` after it on a FIFO queue).
pub fn validate_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("expected the queue's URL, https://sqs.REGION.amazonaws.com/ACCOUNT/NAME")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [host, account, name] = parts[..] else {
        return Err("expected https://HOST/ACCOUNT/NAME (the queue's URL, not its ARN)".into());
    };
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{account:?} is not a 12-digit account id"));
    }
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    if base.is_empty()
        || name.len() > 80
        || !base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "{name:?} is not a queue name (1 to 80 letters, digits, - or _, .fifo included)"
        ));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_are_checked_for_shape() {
        for ok in [
            "https://sqs.us-east-1.amazonaws.com/123456789012/ec2-backup-create-image.fifo",
            "http://127.0.0.1:5000/123456789012/work",
        ] {
            assert_eq!(validate_url(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "arn:aws:sqs:us-east-1:123456789012:work",
            "https://sqs.us-east-1.amazonaws.com/work",
            "https://sqs.us-east-1.amazonaws.com/12345/work",
            "https://sqs.us-east-1.amazonaws.com/123456789012/no spaces",
            "https://sqs.us-east-1.amazonaws.com/123456789012/",
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
        assert!(is_fifo("http://h/123456789012/a.fifo"));
        assert!(!is_fifo("http://h/123456789012/a"));
    }
}
