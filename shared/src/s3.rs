//! The S3 adapter: the only code that speaks to S3. It writes the drill's evidence records, each
//! once, and reads them back for `ec2-backup evidence`.
//!
//! Three calls (PutObject with `If-None-Match: *`, ListObjectsV2, GetObject), signed with SigV4
//! (`aws-sigv4`, the SDK's own signer) and sent through the SDK's HTTP connector, rather than
//! through `aws-sdk-s3`: that crate, with the checksum code every S3 client now carries, adds
//! about 2 MB to a binary, and each of ours must stay under 8 MB. The credentials, region and
//! endpoint are the shared SDK configuration's, as every other adapter's.

use crate::codes;
use crate::error::Error;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use std::time::Duration;

/// The evidence bucket (`EVIDENCE_BUCKET`).
#[derive(Clone)]
pub struct Evidence {
    sdk: aws_config::SdkConfig,
    /// The credentials of the last call, used again until five minutes before they expire (the
    /// SDK's clients cache theirs the same way; a provider such as AssumeRole or SSO would
    /// otherwise be asked once per object).
    credentials: std::sync::Arc<tokio::sync::Mutex<Option<aws_credential_types::Credentials>>>,
    connector: Option<SharedHttpConnector>,
    region: String,
    bucket: String,
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evidence")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .finish()
    }
}

/// What a conditional put found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The object is new.
    New,
    /// An object of that key was there already (a record of a continuation done twice): left
    /// as it was.
    AlreadyThere,
}

/// Attempts of a call that S3 answered with a server error or that got no answer.
const ATTEMPTS: u32 = 3;

/// An answer: its status and its body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Evidence {
    /// The bucket, through the shared SDK configuration (its credentials, its region, and its
    /// endpoint when one is set: a local stand-in of S3 or an interface endpoint, where the
    /// bucket is named in the path).
    pub fn new(sdk: &aws_config::SdkConfig, bucket: &str) -> Self {
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(3))
            .read_timeout(Duration::from_secs(10))
            .build();
        Self {
            sdk: sdk.clone(),
            credentials: Default::default(),
            connector: aws_smithy_http_client::default_connector(&settings, sdk.sleep_impl()),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            bucket: bucket.to_string(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Puts `body` (JSON) at `key` unless an object is there (`If-None-Match: *`): a record is
    /// written once, whoever writes it first.
    pub async fn put_once(&self, key: &str, body: String) -> Result<Written, Error> {
        let headers = [("content-type", "application/json"), ("if-none-match", "*")];
        let answer = self
            .call("PutObject", "PUT", key, "", &headers, body.into_bytes())
            .await?;
        match answer.status {
            200..=299 => Ok(Written::New),
            // A conditional write racing another one for the same key may also answer 409.
            412 | 409 => Ok(Written::AlreadyThere),
            _ => Err(self.refused("PutObject", key, &answer)),
        }
    }

    /// The keys under `prefix` that sort after `start_after`, in order; every page is read.
    pub async fn keys(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type", "2".to_string()),
                ("prefix", prefix.to_string()),
            ];
            match (&token, start_after) {
                (Some(t), _) => query.push(("continuation-token", t.clone())),
                (None, Some(after)) => query.push(("start-after", after.to_string())),
                (None, None) => {}
            }
            let query = encode_query(&query);
            let answer = self
                .call("ListObjectsV2", "GET", "", &query, &[], Vec::new())
                .await?;
            if answer.status != 200 {
                return Err(self.refused("ListObjectsV2", prefix, &answer));
            }
            let text = String::from_utf8_lossy(&answer.body);
            keys.extend(elements(&text, "Key"));
            let truncated =
                elements(&text, "IsTruncated").first().map(String::as_str) == Some("true");
            token = elements(&text, "NextContinuationToken").into_iter().next();
            if !truncated || token.is_none() {
                return Ok(keys);
            }
        }
    }

    /// The object at `key`, as text.
    pub async fn get(&self, key: &str) -> Result<String, Error> {
        let answer = self
            .call("GetObject", "GET", key, "", &[], Vec::new())
            .await?;
        if answer.status != 200 {
            return Err(self.refused("GetObject", key, &answer));
        }
        Ok(String::from_utf8_lossy(&answer.body).into_owned())
    }

    /// The URL of `key` (empty: the bucket) with `query`: in the path of a configured endpoint,
    /// or of a bucket whose name has a dot (no certificate covers it as a host name), else as
    /// the bucket's own host.
    fn url(&self, key: &str, query: &str) -> String {
        let path = key.split('/').map(encode).collect::<Vec<_>>().join("/");
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let domain = if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        match self.sdk.endpoint_url() {
            Some(endpoint) => format!(
                "{}/{}/{path}{query}",
                endpoint.trim_end_matches('/'),
                self.bucket
            ),
            None if self.bucket.contains('.') => format!(
                "https://s3.{}.{domain}/{}/{path}{query}",
                self.region, self.bucket
            ),
            None => format!(
                "https://{}.s3.{}.{domain}/{path}{query}",
                self.bucket, self.region
            ),
        }
    }

    /// One signed call, tried again after a server error or no answer at all.
    async fn call(
        &self,
        operation: &'static str,
        method: &str,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, Error> {
        let mut wait = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match self
                .send(operation, method, key, query, headers, &body)
                .await
            {
                Ok(a) if a.status < 500 || attempt >= ATTEMPTS => return Ok(a),
                Err(e) if attempt >= ATTEMPTS => return Err(e),
                _ => {}
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
            attempt += 1;
        }
    }

    async fn send(
        &self,
        operation: &'static str,
        method: &str,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, Error> {
        let failed = |code: &str, message: String| self.error(operation, code, message);
        let connector = self
            .connector
            .as_ref()
            .ok_or_else(|| failed(codes::CONSTRUCTION_FAILURE, "no HTTP client for S3".into()))?;
        let identity = self.credentials(operation).await?.into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(std::time::SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| failed(codes::CONSTRUCTION_FAILURE, e.to_string()))?
            .into();
        let url = self.url(key, query);
        let mut request = http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let mut request = request
            .body(SdkBody::from(body.to_vec()))
            .map_err(|e| failed(codes::CONSTRUCTION_FAILURE, e.to_string()))?;
        let signable = SignableRequest::new(
            method,
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| failed(codes::CONSTRUCTION_FAILURE, e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| failed(codes::CONSTRUCTION_FAILURE, e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let request =
            request
                .try_into()
                .map_err(|e: aws_smithy_runtime_api::http::HttpError| {
                    failed(codes::CONSTRUCTION_FAILURE, e.to_string())
                })?;
        let response = connector
            .call(request)
            .await
            .map_err(|e| failed(codes::DISPATCH_FAILURE, format!("{e:?}")))?;
        let status = response.status().as_u16();
        let body = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| failed(codes::RESPONSE_ERROR, e.to_string()))?
            .into_bytes()
            .to_vec();
        Ok(Answer { status, body })
    }

    /// The credentials to sign with: the cached ones while they last, else the provider's.
    async fn credentials(
        &self,
        operation: &'static str,
    ) -> Result<aws_credential_types::Credentials, Error> {
        let mut cached = self.credentials.lock().await;
        let fresh = |c: &aws_credential_types::Credentials| {
            c.expiry()
                .is_none_or(|at| at > std::time::SystemTime::now() + Duration::from_secs(300))
        };
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let failed = |code: &str, message: String| self.error(operation, code, message);
        let credentials = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| failed(codes::CONSTRUCTION_FAILURE, "no credentials".into()))?
            .provide_credentials()
            .await
            .map_err(|e| failed("CredentialsNotLoaded", e.to_string()))?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }

    /// S3's refusal of `operation` on `key`, with its code (`NoSuchBucket`, `AccessDenied`, ...).
    fn refused(&self, operation: &'static str, key: &str, answer: &Answer) -> Error {
        let text = String::from_utf8_lossy(&answer.body);
        let code = elements(&text, "Code")
            .into_iter()
            .next()
            .unwrap_or_else(|| format!("Http{}", answer.status));
        let message = elements(&text, "Message")
            .into_iter()
            .next()
            .unwrap_or_default();
        self.error(
            operation,
            &code,
            format!("s3://{}/{key}: {message}", self.bucket),
        )
    }

    fn error(&self, operation: &'static str, code: &str, message: String) -> Error {
        Error::Aws {
            operation,
            region: self.region.clone(),
            code: code.to_string(),
            message: format!("{message} (bucket {})", self.bucket),
        }
    }
}

/// The text of every `<name>...</name>` element of an S3 XML answer, unescaped.
fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#13;", "\r")
        .replace("&amp;", "&")
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (SigV4's rule).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_query(pairs: &[(&str, String)]) -> String {
    let mut pairs: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    pairs.sort();
    pairs.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_codes_are_read_from_s3s_xml() {
        let listed = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>drills/2026/12/06/r/us-west-2/i-1.json</Key></Contents><Contents><Key>a&amp;b</Key></Contents><NextContinuationToken>t+1=</NextContinuationToken></ListBucketResult>";
        assert_eq!(
            elements(listed, "Key"),
            ["drills/2026/12/06/r/us-west-2/i-1.json", "a&b"]
        );
        assert_eq!(elements(listed, "NextContinuationToken"), ["t+1="]);
        assert_eq!(
            elements("<Error><Code>NoSuchBucket</Code></Error>", "Code"),
            ["NoSuchBucket"]
        );
        assert_eq!(encode("drill-run/i-0a:b c"), "drill-run%2Fi-0a%3Ab%20c");
        assert_eq!(
            encode_query(&[("prefix", "drills/".into()), ("list-type", "2".into())]),
            "list-type=2&prefix=drills%2F"
        );
    }
}
