//! DKIM signing with the organiser's own key (`email.dkim_selector`, `email.dkim_key`), for
//! providers that do not sign, and `dkim-keygen`, which makes a key and says what to publish.
//! Keys are PEM: RSA (PKCS#1 or PKCS#8, 2048 bits or more) or Ed25519 (PKCS#8).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;

use crate::config::EmailConfig;

/// The smallest RSA key accepted (RFC 8301: 1024 is no longer enough; Gmail wants 2048).
pub const MIN_RSA_BITS: usize = 2048;

/// The headers signed: those a forwarder must not change. Not Content-Type: lettre writes a
/// multipart's Content-Type after signing, so it cannot be covered (the body hash covers the parts).
const SIGNED: &[&str] = &[
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
];

/// A key read from its file.
pub struct Key {
    signing: DkimSigningKey,
    /// What is known about it.
    pub info: KeyInfo,
}

/// What `check` and `dkim-keygen` say about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `rsa` or `ed25519`.
    pub algorithm: &'static str,
    /// The key's size in bits (256 for Ed25519).
    pub bits: usize,
    /// The public half as the DNS record carries it (`p=`).
    pub public: String,
}

impl KeyInfo {
    /// The TXT record to publish at `selector._domainkey.<domain>`.
    pub fn txt_record(&self) -> String {
        format!("v=DKIM1; k={}; p={}", self.algorithm, self.public)
    }
}

/// Reads and checks a private key file.
pub fn read_key(path: &Path) -> anyhow::Result<Key> {
    let pem = std::fs::read_to_string(path).with_context(|| {
        format!(
            "email.dkim_key {} cannot be read (make one with `quicket-followup dkim-keygen {}`)",
            path.display(),
            path.display()
        )
    })?;
    parse_key(&pem).with_context(|| format!("email.dkim_key {}", path.display()))
}

/// Reads a PEM private key: RSA (PKCS#1 or #8) or Ed25519 (PKCS#8).
pub fn parse_key(pem: &str) -> anyhow::Result<Key> {
    let pem = pem.trim();
    let rsa = if pem.contains("BEGIN RSA PRIVATE KEY") {
        Some(rsa::RsaPrivateKey::from_pkcs1_pem(pem).context("is not a readable RSA key")?)
    } else {
        rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok()
    };
    if let Some(key) = rsa {
        let bits = key.size() * 8;
        anyhow::ensure!(
            bits >= MIN_RSA_BITS,
            "is an RSA key of {bits} bits, too weak for DKIM (receivers ignore keys under {MIN_RSA_BITS}); make a new one with dkim-keygen"
        );
        let public = key
            .to_public_key()
            .to_public_key_der()
            .context("cannot encode the public key")?;
        let pkcs1 = key
            .to_pkcs1_pem(LineEnding::LF)
            .context("cannot re-encode the RSA key")?;
        let signing = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
            .map_err(|e| anyhow::anyhow!("is not usable for DKIM: {e:?}"))?;
        return Ok(Key {
            signing,
            info: KeyInfo {
                algorithm: "rsa",
                bits,
                public: STANDARD.encode(public.as_bytes()),
            },
        });
    }
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
        .map_err(|_| anyhow::anyhow!("is neither an RSA nor an Ed25519 private key in PEM form"))?;
    let signing = DkimSigningKey::new(
        &STANDARD.encode(key.to_bytes()),
        DkimSigningAlgorithm::Ed25519,
    )
    .map_err(|e| anyhow::anyhow!("is not usable for DKIM: {e:?}"))?;
    Ok(Key {
        signing,
        info: KeyInfo {
            algorithm: "ed25519",
            bits: 256,
            // RFC 8463: the raw 32-byte public key.
            public: STANDARD.encode(key.verifying_key().to_bytes()),
        },
    })
}

/// Writes a new key to `path` (mode 0600, never over an existing file) and returns it.
pub fn keygen(path: &Path, ed25519: bool) -> anyhow::Result<KeyInfo> {
    let pem = if ed25519 {
        let mut seed = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut seed);
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        key.to_pkcs8_pem(LineEnding::LF)
            .context("cannot encode the key")?
            .to_string()
    } else {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, MIN_RSA_BITS)
            .context("cannot generate an RSA key")?;
        key.to_pkcs1_pem(LineEnding::LF)
            .context("cannot encode the key")?
            .to_string()
    };
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(parse_key(&pem)?.info)
}

/// Signs with one key for one domain.
pub struct Signer {
    record_name: String,
    info: KeyInfo,
    config: DkimConfig,
}

impl Signer {
    /// The signer `config` asks for: `None` unless both `dkim_selector` and `dkim_key` are set.
    pub fn from_config(config: &EmailConfig) -> anyhow::Result<Option<Signer>> {
        let selector = config.dkim_selector.trim();
        let path = config.dkim_key.as_os_str();
        match (selector.is_empty(), path.is_empty()) {
            (true, true) => return Ok(None),
            (false, true) => anyhow::bail!(
                "email.dkim_selector is set but email.dkim_key is not: set both, or neither"
            ),
            (true, false) => anyhow::bail!(
                "email.dkim_key is set but email.dkim_selector is not: set both, or neither"
            ),
            (false, false) => {}
        }
        anyhow::ensure!(
            selector
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'),
            "email.dkim_selector {selector:?} may hold only letters, digits, '-', '_' and '.'"
        );
        let domain = config
            .from
            .parse::<Mailbox>()
            .ok()
            .map(|m| m.email.domain().to_ascii_lowercase())
            .with_context(|| format!("email.from {:?} is not an address", config.from))?;
        let key = read_key(&config.dkim_key)?;
        let headers = SIGNED
            .iter()
            .filter(|name| **name != "Reply-To" || !config.reply_to.trim().is_empty())
            .map(|name| HeaderName::new_from_ascii_str(name))
            .collect();
        Ok(Some(Signer {
            record_name: format!("{selector}._domainkey.{domain}"),
            info: key.info,
            config: DkimConfig::new(
                selector.to_string(),
                domain,
                key.signing,
                headers,
                DkimCanonicalization {
                    header: DkimCanonicalizationType::Relaxed,
                    body: DkimCanonicalizationType::Relaxed,
                },
            ),
        }))
    }

    /// Where the public key must be published (`selector._domainkey.<From domain>`).
    pub fn record_name(&self) -> &str {
        &self.record_name
    }

    /// The key.
    pub fn info(&self) -> &KeyInfo {
        &self.info
    }

    /// Adds a DKIM-Signature (relaxed/relaxed, `d=` the From domain) to a built message.
    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

/// The signer for `config`, read once per key file and process (a pass signs every email).
/// A key replaced on disk needs a restart, like every `[email]` setting.
pub fn signer(config: &EmailConfig) -> anyhow::Result<Option<Arc<Signer>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Signer>>>> = OnceLock::new();
    if config.dkim_selector.trim().is_empty() && config.dkim_key.as_os_str().is_empty() {
        return Ok(None);
    }
    let id = format!(
        "{}\n{}\n{}",
        config.dkim_selector,
        config.dkim_key.display(),
        config.from
    );
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
        return Ok(Some(found));
    }
    let Some(signer) = Signer::from_config(config)? else {
        return Ok(None);
    };
    let signer = Arc::new(signer);
    if let Ok(mut c) = cache.lock() {
        c.insert(id, signer.clone());
    }
    Ok(Some(signer))
}
