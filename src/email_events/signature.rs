//! Checking that a bounce or complaint really comes from the provider: Mailgun's HMAC, SendGrid's
//! ECDSA P-256 signature and SNS's RSA signature, all verified with ring (through webpki for keys
//! and certificates, so no hand-written ASN.1); Postmark, which signs nothing, by the basic-auth
//! credentials its webhook can be given.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SubjectPublicKeyInfoDer,
};
use serde_json::Value;
use sha2::Sha256;

/// Why a request was refused as not coming from the provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The key needed to check it is not configured.
    #[error(
        "{0} is not set, so the signature cannot be checked; copy it from the provider's webhook settings"
    )]
    NoKey(&'static str),
    /// The configured key cannot be read.
    #[error("{0}")]
    BadKey(String),
    /// No signature, or one that cannot be read.
    #[error("the request carries no readable signature: {0}")]
    Missing(String),
    /// The signature does not match.
    #[error("the signature does not match")]
    Mismatch,
}

/// The user name and password Postmark's webhook sends (HTTP basic auth), when configured.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// `email.postmark_webhook_user`.
    pub user: String,
    /// `email.postmark_webhook_password`.
    pub password: String,
}

/// Postmark: with credentials configured, the request's `Authorization: Basic` header must carry
/// exactly them (compared in constant time); without, there is nothing to check.
pub fn postmark(expected: Option<&BasicAuth>, header: Option<&str>) -> Result<(), SignatureError> {
    use subtle::ConstantTimeEq;
    let Some(expected) = expected else {
        return Ok(());
    };
    let header = header.ok_or_else(|| {
        SignatureError::Missing(
            "no basic-auth credentials (set them in Postmark's webhook settings as \
             email.postmark_webhook_user and email.postmark_webhook_password)"
                .into(),
        )
    })?;
    let encoded = header
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim())
        .ok_or_else(|| SignatureError::Missing("the Authorization header is not Basic".into()))?;
    let decoded = STANDARD
        .decode(encoded)
        .map_err(|_| SignatureError::Missing("the Authorization header is not base64".into()))?;
    let (user, password) = match decoded.iter().position(|&b| b == b':') {
        Some(i) => (&decoded[..i], &decoded[i + 1..]),
        None => (&decoded[..], &[][..]),
    };
    let user_ok = user.ct_eq(expected.user.as_bytes());
    let password_ok = password.ct_eq(expected.password.as_bytes());
    if bool::from(user_ok & password_ok) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Mailgun: `signature.signature` is the hex HMAC-SHA256 of `timestamp` followed by `token`
/// under the webhook signing key.
pub fn mailgun(key: &str, body: &[u8]) -> Result<(), SignatureError> {
    let key = key.trim();
    if key.is_empty() {
        return Err(SignatureError::NoKey("email.mailgun_signing_key"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| SignatureError::Missing(format!("the body is not JSON ({e})")))?;
    let field = |name: &str| {
        value
            .get("signature")
            .and_then(|s| s.get(name))
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .ok_or_else(|| SignatureError::Missing(format!("no signature.{name}")))
    };
    let (timestamp, token, signature) = (field("timestamp")?, field("token")?, field("signature")?);
    let expected = decode_hex(&signature)
        .ok_or_else(|| SignatureError::Missing("signature.signature is not hex".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
        .map_err(|e| SignatureError::BadKey(e.to_string()))?;
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The SendGrid verification key (base64 of a DER SubjectPublicKeyInfo, as SendGrid shows it;
/// a PEM block is accepted too), checked once at start.
pub fn sendgrid_key(text: &str) -> Result<Vec<u8>, String> {
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .collect::<Vec<_>>()
        .join("")
        .split_whitespace()
        .collect();
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("email.sendgrid_public_key is not base64: {e}"))?;
    let spki = SubjectPublicKeyInfoDer::from(der.as_slice());
    webpki::RawPublicKeyEntity::try_from(&spki).map_err(|e| {
        format!("email.sendgrid_public_key is not a public key ({e:?}); paste the Verification Key SendGrid shows")
    })?;
    Ok(der)
}

/// SendGrid: `X-Twilio-Email-Event-Webhook-Signature` is the base64 ECDSA P-256 SHA-256 signature
/// of the `X-Twilio-Email-Event-Webhook-Timestamp` header followed by the raw body.
pub fn sendgrid(
    key_der: Option<&[u8]>,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let key = key_der.ok_or(SignatureError::NoKey("email.sendgrid_public_key"))?;
    let signature = signature.ok_or_else(|| {
        SignatureError::Missing("no X-Twilio-Email-Event-Webhook-Signature header".into())
    })?;
    let timestamp = timestamp.ok_or_else(|| {
        SignatureError::Missing("no X-Twilio-Email-Event-Webhook-Timestamp header".into())
    })?;
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Missing("the signature header is not base64".into()))?;
    let spki = SubjectPublicKeyInfoDer::from(key);
    let entity = webpki::RawPublicKeyEntity::try_from(&spki)
        .map_err(|e| SignatureError::BadKey(format!("email.sendgrid_public_key: {e:?}")))?;
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(body);
    entity
        .verify_signature(webpki::ring::ECDSA_P256_SHA256, &message, &signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// SNS's signature version 1: SHA1withRSA, which webpki (rightly) does not offer for certificate
/// chains; SNS still signs with it unless the topic asks for version 2.
#[derive(Debug)]
struct RsaSha1;

impl rustls_pki_types::SignatureVerificationAlgorithm for RsaSha1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            public_key,
        )
        .verify(message, signature)
        .map_err(|_| InvalidSignature)
    }
    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        rustls_pki_types::alg_id::RSA_ENCRYPTION
    }
    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        // sha1WithRSAEncryption, only for the trait: this verifier never checks a chain.
        AlgorithmIdentifier::from_slice(&[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
        ])
    }
}

/// Verifies an SNS message's `Signature` (base64) over `string_to_sign` with the signing
/// certificate (DER), for `SignatureVersion` 1 (SHA1withRSA) or 2 (SHA256withRSA).
pub fn sns(
    certificate_der: &[u8],
    version: &str,
    string_to_sign: &str,
    signature: &str,
) -> Result<(), SignatureError> {
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Missing("Signature is not base64".into()))?;
    let der = CertificateDer::from(certificate_der);
    let cert = webpki::EndEntityCert::try_from(&der).map_err(|e| {
        SignatureError::BadKey(format!("the SNS signing certificate cannot be read: {e}"))
    })?;
    let result = match version.trim() {
        "1" => cert.verify_signature(&RsaSha1, string_to_sign.as_bytes(), &signature),
        "2" => cert.verify_signature(
            webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            string_to_sign.as_bytes(),
            &signature,
        ),
        other => {
            return Err(SignatureError::Missing(format!(
                "SignatureVersion {other:?} is not 1 or 2"
            )));
        }
    };
    result.map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailgun_body(key: &str, timestamp: &str, token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            r#"{{"signature":{{"timestamp":"{timestamp}","token":"{token}","signature":"{hex}"}},"event-data":{{}}}}"#
        )
    }

    #[test]
    fn mailgun_hmac() {
        let body = mailgun_body(
            "key-1",
            "1529006854",
            "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
        );
        assert_eq!(mailgun("key-1", body.as_bytes()), Ok(()));
        assert_eq!(
            mailgun("key-2", body.as_bytes()),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            mailgun("", body.as_bytes()),
            Err(SignatureError::NoKey(_))
        ));
        assert!(matches!(
            mailgun("key-1", b"{}"),
            Err(SignatureError::Missing(_))
        ));
        let tampered = body.replace("1529006854", "1529006855");
        assert_eq!(
            mailgun("key-1", tampered.as_bytes()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn sendgrid_ecdsa() {
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        // SubjectPublicKeyInfo of a P-256 key: fixed prefix, then the uncompressed point.
        let mut spki = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        spki.extend_from_slice(pair.public_key().as_ref());
        let key = sendgrid_key(&STANDARD.encode(&spki)).unwrap();
        let body = br#"[{"email":"a@b.co.za","event":"bounce"}]"#;
        let signed = [b"1600112502".as_slice(), body].concat();
        let sig = STANDARD.encode(pair.sign(&rng, &signed).unwrap().as_ref());
        let check = |ts: &str, body: &[u8]| sendgrid(Some(&key), Some(&sig), Some(ts), body);
        assert_eq!(check("1600112502", body), Ok(()));
        assert_eq!(check("1600112503", body), Err(SignatureError::Mismatch));
        assert_eq!(check("1600112502", b"[]"), Err(SignatureError::Mismatch));
        assert!(sendgrid_key("not a key").is_err());
        assert!(sendgrid_key(&STANDARD.encode(b"abc")).is_err());
    }

    fn hex_bytes(text: &str) -> Vec<u8> {
        decode_hex(text).unwrap()
    }
}
