//! A NATS server in operator (decentralised JWT) mode for the credentials
//! tests: an operator, a system account and an account with JetStream, with
//! their JWTs preloaded into the server's memory resolver, and users of that
//! account as `.creds` files, all made at run time.
//!
//! A NATS JWT is three base64url (unpadded) parts joined by `.`: the header
//! `{"typ":"JWT","alg":"ed25519-nkey"}`, the claims as JSON, and the
//! ed25519 signature of `HEADER.CLAIMS` by the issuer's nkey. The claims
//! name the issuer (`iss`) and subject (`sub`) by public nkey, and keep what
//! is NATS's own under `nats` (`type`, `version: 2`, limits).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};

/// The files of an operator-mode setup in a test's scratch directory.
pub struct JwtAuth {
    /// The server's configuration (`nats-server -c`): operator, system
    /// account, memory resolver with both accounts preloaded.
    pub config: PathBuf,
    /// A user of the JetStream account: its JWT and its own seed.
    pub creds: PathBuf,
    /// The same user's JWT with the seed of another user: the server's
    /// nonce is signed with a key the JWT does not name.
    pub wrong_seed: PathBuf,
    /// A user whose JWT an account the server does not know signed.
    pub unknown_account: PathBuf,
}

/// Signs `claims` as a NATS JWT with `issuer`'s key.
pub fn encode(claims: &Value, issuer: &KeyPair) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let signed = format!("{header}.{body}");
    let sig = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The claims common to every JWT, around the NATS-specific `nats` part.
fn claims(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> Value {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The id only has to be unique (nsc uses a hash of the claims).
    let jti = format!(
        "SPILLWAY{}{now}{}",
        &subject[1..12],
        SERIAL.fetch_add(1, Ordering::Relaxed)
    );
    json!({
        "jti": jti,
        "iat": now,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    })
}

fn account_jwt(operator: &KeyPair, account: &KeyPair, name: &str, jetstream: bool) -> String {
    let mut limits = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
    });
    if jetstream {
        for k in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[k] = json!(-1);
        }
    }
    let nats = json!({
        "limits": limits,
        "default_permissions": { "pub": {}, "sub": {} },
        "type": "account",
        "version": 2,
    });
    encode(
        &claims(operator, &account.public_key(), name, nats),
        operator,
    )
}

fn user_jwt(account: &KeyPair, user: &KeyPair, name: &str) -> String {
    let nats = json!({
        "pub": {}, "sub": {},
        "subs": -1, "data": -1, "payload": -1,
        "type": "user",
        "version": 2,
    });
    encode(&claims(account, &user.public_key(), name, nats), account)
}

/// A `.creds` file's text, as `nsc` writes it and clients read it.
pub fn creds_text(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

impl JwtAuth {
    /// Makes the keys and JWTs and writes the files into `dir`.
    pub fn new(dir: &Path) -> Self {
        let operator = KeyPair::new_operator();
        let system = KeyPair::new_account();
        let app = KeyPair::new_account();
        let stranger = KeyPair::new_account();
        let op_claims = claims(
            &operator,
            &operator.public_key(),
            "spillway-test",
            json!({ "system_account": system.public_key(), "type": "operator", "version": 2 }),
        );
        let op_jwt = encode(&op_claims, &operator);
        let sys_jwt = account_jwt(&operator, &system, "SYS", false);
        let app_jwt = account_jwt(&operator, &app, "APP", true);

        let config = dir.join("operator.conf");
        std::fs::write(
            &config,
            format!(
                "operator: \"{op_jwt}\"\nsystem_account: \"{sys}\"\nresolver: MEMORY\n\
                 resolver_preload: {{\n  {sys}: \"{sys_jwt}\"\n  {app}: \"{app_jwt}\"\n}}\n",
                sys = system.public_key(),
                app = app.public_key(),
            ),
        )
        .unwrap();

        let device = KeyPair::new_user();
        let device_jwt = user_jwt(&app, &device, "device");
        let other = KeyPair::new_user();
        let stray = KeyPair::new_user();
        let stray_jwt = user_jwt(&stranger, &stray, "stray");
        let write = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        Self {
            config,
            creds: write(
                "device.creds",
                creds_text(&device_jwt, &device.seed().unwrap()),
            ),
            wrong_seed: write(
                "wrong-seed.creds",
                creds_text(&device_jwt, &other.seed().unwrap()),
            ),
            unknown_account: write(
                "stray.creds",
                creds_text(&stray_jwt, &stray.seed().unwrap()),
            ),
        }
    }

    /// The `nats-server` arguments that load this configuration.
    pub fn server_args(&self) -> Vec<String> {
        vec!["-c".to_owned(), self.config.display().to_string()]
    }
}
