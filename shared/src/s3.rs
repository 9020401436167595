//! The S3 adapter: the only code that knows the S3 SDK. It writes the drill's evidence records,
//! each once, and reads them back for `ec2-backup evidence`.

use crate::error::Error;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

/// The evidence bucket (`EVIDENCE_BUCKET`).
#[derive(Debug, Clone)]
pub struct Evidence {
    client: Client,
    bucket: String,
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

impl Evidence {
    /// The bucket, through the shared SDK configuration. With an endpoint of its own (a local
    /// stand-in of S3, or an interface endpoint), requests name the bucket in the path: such an
    /// endpoint has no per-bucket host names.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: &str) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self::from_client(Client::from_conf(conf), bucket)
    }

    pub fn from_client(client: Client, bucket: &str) -> Self {
        Self {
            client,
            bucket: bucket.to_string(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Puts `body` (JSON) at `key` unless an object is there (`If-None-Match: *`): a record is
    /// written once, whoever writes it first.
    pub async fn put_once(&self, key: &str, body: String) -> Result<Written, Error> {
        let answer = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .if_none_match("*")
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(Written::New),
            Err(e) => match self.error("PutObject", e) {
                e if e.code() == Some(crate::codes::PRECONDITION_FAILED) => {
                    Ok(Written::AlreadyThere)
                }
                e => Err(e),
            },
        }
    }

    /// The keys under `prefix` that sort after `start_after`, in order; every page is read.
    pub async fn keys(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<String>, Error> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_string))
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("ListObjectsV2", e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    /// The object at `key`, as text.
    pub async fn get(&self, key: &str) -> Result<String, Error> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("GetObject", e))?;
        let bytes = out.body.collect().await.map_err(|e| Error::Aws {
            operation: "GetObject",
            region: self.region(),
            code: crate::codes::RESPONSE_ERROR.to_string(),
            message: format!("s3://{}/{key}: {e}", self.bucket),
        })?;
        Ok(String::from_utf8_lossy(&bytes.into_bytes()).into_owned())
    }

    fn region(&self) -> String {
        let region = self.client.config().region();
        region.map(|r| r.to_string()).unwrap_or_default()
    }

    /// An SDK error of `operation` on this bucket, keeping its code and naming the bucket.
    fn error<E, R>(&self, operation: &'static str, err: aws_sdk_s3::error::SdkError<E, R>) -> Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match crate::aws::aws_error(operation, &self.region(), err) {
            Error::Aws { code, message, .. } => Error::Aws {
                operation,
                region: self.region(),
                code,
                message: format!("{message} (bucket {})", self.bucket),
            },
            other => other,
        }
    }
}
