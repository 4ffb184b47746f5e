//! Customer accounts: sign-up, sign-in, refresh, sign-out, password change and reset.
//!
//! The order service owns customers because it already holds what a shop knows of them
//! (the email, name and address on each order) and is the service whose answers they most
//! need to be scoped by; the other services never ask it about a session: they check the
//! signed access token themselves (`service_kit::session`).
//!
//! Nothing here tells whether an email has an account: sign-up answers the same either way
//! (and spends the same time hashing), sign-in answers one "email or password is wrong" and
//! verifies against a stand-in hash when there is no account. Emails are compared in lower
//! case and never logged. Sign-in attempts are counted per email and per client: after
//! [`FREE_FAILURES`] failures each further one must wait twice as long as the last (from
//! 1 s to [`MAX_WAIT_SECS`]), answered 429 without trying the password.

use crate::AppState;
use crate::store;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use service_kit::clock;
use service_kit::db::StoreError;
use service_kit::session::{self, CUSTOMER_PREFIX, SessionKeys};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Failed sign-ins allowed (per email, per client) before they must wait.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait between failed sign-ins: 15 minutes.
pub const MAX_WAIT_SECS: u64 = 15 * 60;
/// How long an access token lives.
pub const ACCESS_TTL_SECS: u64 = 15 * 60;
/// How long a refresh token lives unless ended first: 30 days.
pub const REFRESH_TTL_SECS: i64 = 30 * 24 * 3600;
/// How long an admin's password reset token lives: one hour.
pub const RESET_TTL_SECS: i64 = 3600;
/// Passwords: at least this many characters...
pub const MIN_PASSWORD: usize = 10;
/// ... and at most this many (argon2 takes any length; a cap keeps a request cheap).
pub const MAX_PASSWORD: usize = 128;

/// A customer as they see themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerAccount {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub created_at: String,
}

/// A signed-in session: the access token every service checks, and the refresh token only
/// this service knows (by its hash).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
    pub customer: CustomerAccount,
}

/// Why an account operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum AccountRefused {
    /// Sign-in with an email or password that does not match (which, is never said).
    #[error("the email or password is wrong")]
    WrongCredentials,
    /// A refresh, reset or sign-out token that opens nothing (ended, expired, unknown).
    #[error("{0}")]
    BadToken(&'static str),
    /// Too many failed sign-ins for this email or from this client: wait this many seconds.
    #[error("too many failed sign-ins; retry after {0} s")]
    TooManyAttempts(u64),
    /// The request breaks a rule (named in the message).
    #[error("{0}")]
    Invalid(String),
    /// No account has this email (an admin's reset only: shoppers never learn it).
    #[error("no customer has this email")]
    UnknownEmail,
    /// The shop has no `--session-secret`: nobody can sign in.
    #[error("customer accounts need --session-secret (SESSION_SECRET) on every service")]
    NotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl service_kit::db::StoreFailure for AccountRefused {
    fn storage_problem(&self) -> Option<String> {
        match self {
            AccountRefused::Store(err) => err.storage_problem(),
            _ => None,
        }
    }
}

/// What a sign-up or sign-in carries. `Debug` shows neither part.
#[derive(Clone)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

/// The email as compared (`None` when it is not an address).
fn email_key(email: &str) -> Option<String> {
    shop_contracts::customer::normalized_email(email).map(|e| e.to_lowercase())
}

fn checked_password(password: &str) -> Result<(), AccountRefused> {
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(AccountRefused::Invalid(format!(
            "password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

/// An argon2id PHC string of `password` (argon2's default parameters: 19 MiB, 2 passes),
/// computed off the async threads.
async fn hash(password: String) -> Result<String, AccountRefused> {
    service_kit::context::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| StoreError::Failed(format!("password hashing failed: {err}")))
    })
    .await
    .map_err(|err| StoreError::Failed(format!("password hashing panicked: {err}")))?
    .map_err(AccountRefused::Store)
}

/// Whether `password` matches `phc` (a stand-in hash when there is no account, so that
/// the answer takes as long either way).
async fn verify(password: String, phc: Option<String>) -> bool {
    service_kit::context::spawn_blocking(move || {
        let stand_in = stand_in_hash();
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| stand_in.to_string());
        let matches = PasswordHash::new(&phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        known && matches
    })
    .await
    .unwrap_or(false)
}

/// [`verify`], the outcome counted against `guard_keys`: a failure brings the next attempt's
/// wait nearer, a success forgives the email.
async fn verify_counted(
    state: &AppState,
    guard_keys: &[String],
    password: String,
    phc: Option<String>,
) -> Result<(), AccountRefused> {
    if !verify(password, phc).await {
        state.sign_ins.failed(guard_keys);
        return Err(AccountRefused::WrongCredentials);
    }
    state.sign_ins.succeeded(guard_keys);
    Ok(())
}

/// A hash no password is expected to match, made once.
fn stand_in_hash() -> &'static str {
    static STAND_IN: OnceLock<String> = OnceLock::new();
    STAND_IN.get_or_init(|| {
        Argon2::default()
            .hash_password(session::random_token("").as_bytes())
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// Creates the account unless the email has one; answers the same either way.
pub async fn sign_up(
    state: &AppState,
    credentials: Credentials,
    name: Option<String>,
) -> Result<(), AccountRefused> {
    let key = email_key(&credentials.email).ok_or_else(|| {
        AccountRefused::Invalid("email must be an address like name@example.com".into())
    })?;
    checked_password(&credentials.password)?;
    let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
        return Err(AccountRefused::Invalid(
            "name must be at most 100 characters".into(),
        ));
    }
    let email =
        shop_contracts::customer::normalized_email(&credentials.email).unwrap_or(key.clone());
    let phc = hash(credentials.password).await?;
    let id = session::new_id(CUSTOMER_PREFIX);
    state
        .db
        .write(move |tx| {
            store::insert_customer_unless_known(tx, &id, (&email, &key), name.as_deref(), &phc)?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// Signs in: checks the attempt limits, the password, then opens a session.
pub async fn sign_in(
    state: &AppState,
    credentials: Credentials,
    client: IpAddr,
) -> Result<SignedIn, AccountRefused> {
    let sessions = state
        .sessions
        .clone()
        .ok_or(AccountRefused::NotConfigured)?;
    let key = email_key(&credentials.email);
    let guard_keys = attempt_keys(key.as_deref(), client);
    state.sign_ins.admit(&guard_keys)?;
    let found = match key.clone() {
        Some(key) => {
            state
                .db
                .read(move |conn| Ok(store::customer_by_email_key(conn, &key)?))
                .await?
        }
        None => None,
    };
    let phc = found.as_ref().map(|(_, phc)| phc.clone());
    verify_counted(state, &guard_keys, credentials.password, phc).await?;
    let (account, _) = found.ok_or(AccountRefused::WrongCredentials)?;
    open_session(state, &sessions, account).await
}

/// Writes a new refresh token for `account` and issues its access token.
async fn open_session(
    state: &AppState,
    sessions: &SessionKeys,
    account: CustomerAccount,
) -> Result<SignedIn, AccountRefused> {
    let refresh_token = session::random_token("rt_");
    let hashed = session::token_hash(&refresh_token);
    let customer = account.id.clone();
    let expires = clock::unix_now() + REFRESH_TTL_SECS;
    state
        .db
        .write(move |tx| {
            let kind = store::CustomerToken::Session;
            Ok(store::insert_customer_token(
                tx,
                kind,
                (&hashed, &customer),
                expires,
            )?)
        })
        .await?;
    Ok(SignedIn {
        access_token: sessions.issue(
            &account.id,
            clock::unix_now().unsigned_abs(),
            ACCESS_TTL_SECS,
        ),
        expires_in: ACCESS_TTL_SECS,
        refresh_token,
        customer: account,
    })
}

/// Trades a refresh token for a new session; the old token is ended (so a replay of it
/// opens nothing).
pub async fn refresh(state: &AppState, refresh_token: &str) -> Result<SignedIn, AccountRefused> {
    let sessions = state
        .sessions
        .clone()
        .ok_or(AccountRefused::NotConfigured)?;
    let hashed = session::token_hash(refresh_token);
    let now = clock::unix_now();
    let account = state
        .db
        .write(move |tx| {
            let Some(customer) = store::live_session(tx, &hashed, now)? else {
                return Ok(None);
            };
            store::end_session(tx, &hashed)?;
            Ok(store::customer_by_id(tx, &customer)?)
        })
        .await?
        .ok_or(AccountRefused::BadToken(
            "this refresh token opens nothing (signed out, replaced or expired): sign in again",
        ))?;
    open_session(state, &sessions, account).await
}

/// Ends the session of `refresh_token` (nothing when it opens none).
pub async fn sign_out(state: &AppState, refresh_token: &str) -> Result<(), AccountRefused> {
    let hashed = session::token_hash(refresh_token);
    state
        .db
        .write(move |tx| Ok(store::end_session(tx, &hashed)?))
        .await?;
    Ok(())
}

/// The customer `id` as they see themselves.
pub async fn account(state: &AppState, id: &str) -> Result<Option<CustomerAccount>, StoreError> {
    let id = id.to_string();
    state
        .db
        .read(move |conn| Ok(store::customer_by_id(conn, &id)?))
        .await
}

/// Changes `customer`'s password after checking the current one; ends all their sessions.
pub async fn change_password(
    state: &AppState,
    customer: &str,
    current: String,
    new: String,
    client: IpAddr,
) -> Result<(), AccountRefused> {
    checked_password(&new)?;
    let id = customer.to_string();
    let guard_keys = attempt_keys(Some(customer), client);
    state.sign_ins.admit(&guard_keys)?;
    let phc = state
        .db
        .read(move |conn| Ok(store::password_hash_of(conn, &id)?))
        .await?;
    verify_counted(state, &guard_keys, current, phc).await?;
    set_password(state, customer.to_string(), new).await
}

async fn set_password(
    state: &AppState,
    customer: String,
    new: String,
) -> Result<(), AccountRefused> {
    let phc = hash(new).await?;
    state
        .db
        .write(move |tx| {
            store::set_password(tx, &customer, &phc)?;
            store::end_sessions_of(tx, &customer)?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// An admin's reset token for the account of `email` (until the shop sends mail, the admin
/// passes it on).
pub async fn issue_reset(state: &AppState, email: &str) -> Result<(String, i64), AccountRefused> {
    let key = email_key(email).ok_or(AccountRefused::UnknownEmail)?;
    let token = session::random_token("pr_");
    let hashed = session::token_hash(&token);
    let expires = clock::unix_now() + RESET_TTL_SECS;
    let issued = state
        .db
        .write(move |tx| {
            let Some((account, _)) = store::customer_by_email_key(tx, &key)? else {
                return Ok(false);
            };
            let kind = store::CustomerToken::Reset;
            store::insert_customer_token(tx, kind, (&hashed, &account.id), expires)?;
            Ok(true)
        })
        .await?;
    if !issued {
        return Err(AccountRefused::UnknownEmail);
    }
    Ok((token, expires))
}

/// Sets a new password with a reset token (used once); ends all the customer's sessions.
pub async fn reset_password(
    state: &AppState,
    token: &str,
    new: String,
) -> Result<(), AccountRefused> {
    checked_password(&new)?;
    let phc = hash(new).await?;
    let hashed = session::token_hash(token);
    let now = clock::unix_now();
    let reset = state
        .db
        .write(move |tx| {
            let Some(customer) = store::use_reset(tx, &hashed, now)? else {
                return Ok(false);
            };
            store::set_password(tx, &customer, &phc)?;
            store::end_sessions_of(tx, &customer)?;
            Ok(true)
        })
        .await?;
    if !reset {
        return Err(AccountRefused::BadToken(
            "this reset token opens nothing (used, expired or unknown)",
        ));
    }
    Ok(())
}

/// What sign-in attempts are counted under: the email (hashed, so the table holds no
/// address) and the client.
fn attempt_keys(email_key: Option<&str>, client: IpAddr) -> Vec<String> {
    let mut keys = vec![format!("client:{client}")];
    if let Some(email) = email_key {
        keys.push(format!("email:{}", session::token_hash(email)));
    }
    keys
}

/// Failed sign-ins per email and per client, in memory (a restart forgives them; so does
/// a success for its email).
#[derive(Debug, Default)]
pub struct SignInGuard {
    failures: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    not_before: Instant,
    last: Instant,
}

/// How long the `count`th failure makes the next attempt wait.
pub fn wait_after(count: u32) -> Duration {
    if count < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (count - FREE_FAILURES).min(20);
    Duration::from_secs((1u64 << doublings).min(MAX_WAIT_SECS))
}

impl SignInGuard {
    fn admit(&self, keys: &[String]) -> Result<(), AccountRefused> {
        let failures = self.lock();
        let now = Instant::now();
        let wait = keys
            .iter()
            .filter_map(|key| failures.get(key))
            .map(|f| f.not_before.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait > Duration::ZERO {
            return Err(AccountRefused::TooManyAttempts(wait.as_secs().max(1)));
        }
        Ok(())
    }

    fn failed(&self, keys: &[String]) {
        let mut failures = self.lock();
        let now = Instant::now();
        if failures.len() > 100_000 {
            // Forget what has not failed for an hour, so a spray of emails cannot grow
            // this without end.
            failures.retain(|_, f| now.duration_since(f.last) < Duration::from_secs(3600));
        }
        for key in keys {
            let entry = failures.entry(key.clone()).or_insert(Failures {
                count: 0,
                not_before: now,
                last: now,
            });
            entry.count += 1;
            entry.last = now;
            entry.not_before = now + wait_after(entry.count);
        }
    }

    fn succeeded(&self, keys: &[String]) {
        let mut failures = self.lock();
        for key in keys.iter().filter(|k| !k.starts_with("client:")) {
            failures.remove(key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_wait_twice_as_long_each_time_after_the_free_ones_up_to_fifteen_minutes() {
        assert_eq!(wait_after(1), Duration::ZERO);
        assert_eq!(wait_after(FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(wait_after(FREE_FAILURES), Duration::from_secs(1));
        assert_eq!(wait_after(FREE_FAILURES + 1), Duration::from_secs(2));
        assert_eq!(wait_after(FREE_FAILURES + 3), Duration::from_secs(8));
        assert_eq!(wait_after(1000), Duration::from_secs(MAX_WAIT_SECS));
    }

    #[test]
    fn the_guard_refuses_an_email_or_a_client_over_its_failures_and_a_success_forgives_the_email() {
        let guard = SignInGuard::default();
        let client: IpAddr = "127.0.0.9".parse().unwrap();
        let ada = attempt_keys(Some("ada@example.com"), client);
        for _ in 0..FREE_FAILURES {
            assert!(guard.admit(&ada).is_ok());
            guard.failed(&ada);
        }
        assert!(matches!(
            guard.admit(&ada),
            Err(AccountRefused::TooManyAttempts(1))
        ));
        // The same client for another email is held too (it is the client that failed).
        let bob = attempt_keys(Some("bob@example.com"), client);
        assert!(guard.admit(&bob).is_err());
        // Another client for another email is not.
        let elsewhere = attempt_keys(Some("bob@example.com"), "127.0.0.10".parse().unwrap());
        assert!(guard.admit(&elsewhere).is_ok());
        guard.succeeded(&ada);
        let ada_elsewhere = attempt_keys(Some("ada@example.com"), "127.0.0.10".parse().unwrap());
        assert!(guard.admit(&ada_elsewhere).is_ok());
    }

    #[test]
    fn emails_compare_in_lower_case_and_passwords_have_a_length() {
        assert_eq!(email_key(" Ada@Example.COM "), email_key("ada@example.com"));
        assert!(email_key("not an email").is_none());
        assert!(checked_password("short").is_err());
        assert!(checked_password(&"x".repeat(MAX_PASSWORD + 1)).is_err());
        assert!(checked_password("long enough pass").is_ok());
    }
}
