//! Signed webhooks in the Standard Webhooks format: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
//!
//! Several secrets may be configured so one can be rotated: the sender signs with each and
//! sends every signature; the receiver accepts a message when any signature matches any of
//! its secrets.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

/// Header carrying the message id (the same on every retry of one message).
pub const ID_HEADER: &str = "webhook-id";
/// Header carrying the send time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,<signature>` list.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// How far a timestamp may be from the receiver's clock, either way.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// One signing key. `whsec_<base64>` is decoded as the standard says; any other text is
/// used as it is. Never printed.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// A secret that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Empty, or `whsec_` with nothing after it.
    #[error("webhook secret is empty")]
    Empty,
    /// `whsec_` followed by something that is not base64.
    #[error("webhook secret after 'whsec_' is not valid base64")]
    NotBase64,
}

impl FromStr for WebhookSecret {
    type Err = SecretError;
    fn from_str(text: &str) -> Result<Self, SecretError> {
        let key = match text.strip_prefix("whsec_") {
            Some(encoded) => BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?,
            None => text.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(WebhookSecret(key))
    }
}

impl WebhookSecret {
    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = hmac_sha256(&self.0);
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// `v1,<signature>` for one message with this secret.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", BASE64.encode(tag))
    }
}

/// Parses a comma-separated list of secrets (for rotation).
pub fn parse_secrets(list: &str) -> Result<Vec<WebhookSecret>, SecretError> {
    let secrets = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<WebhookSecret>, _>>()?;
    if secrets.is_empty() {
        return Err(SecretError::Empty);
    }
    Ok(secrets)
}

/// The `webhook-signature` value for a message: one `v1,` signature per secret.
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a webhook was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent or empty.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// The timestamp is not a number.
    #[error("webhook-timestamp is not a Unix time")]
    BadTimestamp,
    /// The timestamp is more than [`TOLERANCE_SECONDS`] from now.
    #[error("webhook-timestamp is too old or too far in the future")]
    OutOfTolerance,
    /// No `v1,` signature matches any secret.
    #[error("no valid webhook signature")]
    NoMatch,
}

/// The three headers as received (each `None` when absent).
#[derive(Debug, Clone, Copy)]
pub struct ReceivedHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
}

/// Checks a received message against `secrets` at time `now` (Unix seconds). Signatures are
/// compared in constant time. Returns the message id.
pub fn verify<'a>(
    secrets: &[WebhookSecret],
    headers: ReceivedHeaders<'a>,
    body: &[u8],
    now: i64,
) -> Result<&'a str, VerifyError> {
    let present = |value: Option<&'a str>, name| {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(VerifyError::MissingHeader(name))
    };
    let id = present(headers.id, ID_HEADER)?;
    let timestamp_text = present(headers.timestamp, TIMESTAMP_HEADER)?;
    let signatures = present(headers.signature, SIGNATURE_HEADER)?;
    let timestamp: i64 = timestamp_text
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    // `abs_diff` cannot overflow: `now - timestamp` did for a timestamp near -2^63, which
    // then skipped this check.
    if now.abs_diff(timestamp) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(VerifyError::OutOfTolerance);
    }
    let candidates: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter(|encoded| !encoded.is_empty())
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .collect();
    let matched = secrets.iter().any(|secret| {
        candidates.iter().any(|candidate| {
            secret
                .mac(id, timestamp, body)
                .verify_slice(candidate)
                .is_ok()
        })
    });
    if matched {
        Ok(id)
    } else {
        Err(VerifyError::NoMatch)
    }
}

pub use crate::clock::unix_now;

/// HMAC-SHA256 keyed with `key` (the webhook signatures, the idempotency fingerprints).
pub(crate) fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    #[allow(
        clippy::expect_used,
        reason = "HMAC takes a key of any length: this cannot fail"
    )]
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secrets() -> Vec<WebhookSecret> {
        parse_secrets(SPEC_SECRET).unwrap()
    }

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> ReceivedHeaders<'a> {
        ReceivedHeaders {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn signing_reproduces_the_specification_test_vector() {
        let secret: WebhookSecret = SPEC_SECRET.parse().unwrap();
        assert_eq!(
            secret.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn the_specification_test_vector_verifies() {
        let ts = SPEC_TIMESTAMP.to_string();
        let got = verify(
            &secrets(),
            headers(SPEC_ID, &ts, SPEC_SIGNATURE),
            SPEC_BODY,
            SPEC_TIMESTAMP,
        );
        assert_eq!(got, Ok(SPEC_ID));
    }

    #[test]
    fn any_missing_or_empty_header_is_refused() {
        let ts = SPEC_TIMESTAMP.to_string();
        let full = headers(SPEC_ID, &ts, SPEC_SIGNATURE);
        for (h, name) in [
            (ReceivedHeaders { id: None, ..full }, ID_HEADER),
            (
                ReceivedHeaders {
                    timestamp: None,
                    ..full
                },
                TIMESTAMP_HEADER,
            ),
            (
                ReceivedHeaders {
                    signature: None,
                    ..full
                },
                SIGNATURE_HEADER,
            ),
            (
                ReceivedHeaders {
                    signature: Some(""),
                    ..full
                },
                SIGNATURE_HEADER,
            ),
        ] {
            assert_eq!(
                verify(&secrets(), h, SPEC_BODY, SPEC_TIMESTAMP),
                Err(VerifyError::MissingHeader(name))
            );
        }
    }

    #[test]
    fn an_empty_or_foreign_signature_is_refused() {
        let ts = SPEC_TIMESTAMP.to_string();
        for sig in [
            "v1,",
            "v1, ",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "garbage",
            "v1,!!!",
        ] {
            assert_eq!(
                verify(
                    &secrets(),
                    headers(SPEC_ID, &ts, sig),
                    SPEC_BODY,
                    SPEC_TIMESTAMP
                ),
                Err(VerifyError::NoMatch),
                "{sig}"
            );
        }
    }

    #[test]
    fn a_body_changed_by_one_byte_is_refused() {
        let ts = SPEC_TIMESTAMP.to_string();
        let mut body = SPEC_BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(
            verify(
                &secrets(),
                headers(SPEC_ID, &ts, SPEC_SIGNATURE),
                &body,
                SPEC_TIMESTAMP
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(
                &secrets(),
                headers("msg_other", &ts, SPEC_SIGNATURE),
                SPEC_BODY,
                SPEC_TIMESTAMP
            ),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn extreme_timestamps_are_refused_as_out_of_tolerance_without_overflowing() {
        for now in [SPEC_TIMESTAMP, 0, i64::MIN, i64::MAX] {
            for sent in [
                i64::MIN,
                i64::MIN + 1,
                i64::MAX,
                now.wrapping_sub(i64::MIN),
                now.wrapping_add(i64::MAX),
                now.saturating_sub(1 << 62),
                now.saturating_add(TOLERANCE_SECONDS + 1),
                now.saturating_sub(TOLERANCE_SECONDS + 1),
            ] {
                if now.abs_diff(sent) <= TOLERANCE_SECONDS.unsigned_abs() {
                    continue;
                }
                let ts = sent.to_string();
                assert_eq!(
                    verify(
                        &secrets(),
                        headers(SPEC_ID, &ts, SPEC_SIGNATURE),
                        SPEC_BODY,
                        now
                    ),
                    Err(VerifyError::OutOfTolerance),
                    "timestamp {sent} at {now}"
                );
            }
        }
        for unparsable in [
            "9223372036854775808",
            "-9223372036854775809",
            "1e30",
            "0x10",
        ] {
            assert_eq!(
                verify(
                    &secrets(),
                    headers(SPEC_ID, unparsable, SPEC_SIGNATURE),
                    SPEC_BODY,
                    SPEC_TIMESTAMP
                ),
                Err(VerifyError::BadTimestamp),
                "{unparsable}"
            );
        }
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_at_five_minutes() {
        let ts = SPEC_TIMESTAMP.to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIGNATURE);
        assert!(verify(&secrets(), h, SPEC_BODY, SPEC_TIMESTAMP + TOLERANCE_SECONDS).is_ok());
        assert!(verify(&secrets(), h, SPEC_BODY, SPEC_TIMESTAMP - TOLERANCE_SECONDS).is_ok());
        assert_eq!(
            verify(
                &secrets(),
                h,
                SPEC_BODY,
                SPEC_TIMESTAMP + TOLERANCE_SECONDS + 1
            ),
            Err(VerifyError::OutOfTolerance)
        );
        assert_eq!(
            verify(
                &secrets(),
                h,
                SPEC_BODY,
                SPEC_TIMESTAMP - TOLERANCE_SECONDS - 1
            ),
            Err(VerifyError::OutOfTolerance)
        );
        assert_eq!(
            verify(
                &secrets(),
                headers(SPEC_ID, "soon", SPEC_SIGNATURE),
                SPEC_BODY,
                SPEC_TIMESTAMP
            ),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn rotation_signs_with_every_secret_and_accepts_any() {
        let old_and_new = parse_secrets("old-secret, whsec_bmV3LXNlY3JldA==").unwrap();
        let header = signature_header(&old_and_new, "m1", 100, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        let only_new = parse_secrets("whsec_bmV3LXNlY3JldA==").unwrap();
        let only_old = parse_secrets("old-secret").unwrap();
        let h = headers("m1", "100", &header);
        assert!(verify(&only_new, h, b"{}", 100).is_ok());
        assert!(verify(&only_old, h, b"{}", 100).is_ok());
        let stranger = parse_secrets("someone-else").unwrap();
        assert_eq!(verify(&stranger, h, b"{}", 100), Err(VerifyError::NoMatch));
    }

    #[test]
    fn unusable_secrets_are_refused() {
        assert_eq!(parse_secrets("").unwrap_err(), SecretError::Empty);
        assert_eq!(parse_secrets("whsec_").unwrap_err(), SecretError::Empty);
        assert_eq!(
            parse_secrets("whsec_***").unwrap_err(),
            SecretError::NotBase64
        );
        assert!(!format!("{:?}", secrets()).contains("MfKQ"));
    }
}
