//! Standard Webhooks signatures: `whsec_` secrets and the
//! `webhook-id` / `webhook-timestamp` / `webhook-signature` headers
//! (HMAC-SHA256 over `id.timestamp.body`), through the scheme's reference
//! crate. Secrets are sealed at rest with the master key.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::account::Secret;
use crate::secrets::{MasterKey, SecretsError};

/// The key of the signing secret in a subscription's sealed map.
const SECRET_NAME: &str = "signing_secret";

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> Secret {
    let bytes: [u8; 32] = rand::random();
    Secret::new(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// Seals `secret` for the subscription `id` (its id is the associated data,
/// so a sealed secret cannot be moved to another subscription).
pub fn seal(key: &MasterKey, id: &str, secret: &Secret) -> String {
    key.seal(
        id,
        &BTreeMap::from([(SECRET_NAME.to_owned(), secret.clone())]),
    )
}

/// Opens what [`seal`] made.
pub fn open(key: &MasterKey, id: &str, sealed: &str) -> Result<Secret, SecretsError> {
    key.open(id, sealed)?
        .remove(SECRET_NAME)
        .ok_or(SecretsError::Open)
}

/// The three headers of one attempt, as (name, value).
pub fn headers(
    secret: &Secret,
    event_id: &str,
    timestamp: i64,
    body: &str,
) -> Result<[(&'static str, String); 3], standardwebhooks::WebhookError> {
    let signature = standardwebhooks::Webhook::new(secret.expose())?.sign(
        event_id,
        timestamp,
        body.as_bytes(),
    )?;
    Ok([
        (standardwebhooks::HEADER_WEBHOOK_ID, event_id.to_owned()),
        (
            standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
            timestamp.to_string(),
        ),
        (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standards_test_vector() {
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let h = headers(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(h[2].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(new_secret().expose().starts_with("whsec_"));
        let key = MasterKey::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        let sealed = seal(&key, "whk_1", &secret);
        assert_eq!(
            open(&key, "whk_1", &sealed).unwrap().expose(),
            secret.expose()
        );
        assert!(
            open(&key, "whk_2", &sealed).is_err(),
            "bound to its subscription"
        );
    }
}
