//! The services some tests need — PostgreSQL and the embedded model — and one rule for
//! when they are absent: the test is skipped with a note on stderr, unless
//! `AGENTBUS_REQUIRE_SERVICES=1` (CI sets it), when it fails with a message saying what
//! is missing and how to provide it.
//!
//! # Examples
//!
//! ```
//! use agentbus_test_support::services;
//!
//! # fn check() {
//! // In a test: return early (skipped, with a note) when the service is absent here.
//! if !services::available("the example service", Err("not installed".into()), "install it") {
//!     return;
//! }
//! # }
//! ```

/// The variable that makes absent services a failure instead of a skip.
pub const REQUIRE_SERVICES: &str = "AGENTBUS_REQUIRE_SERVICES";

/// Whether absent services fail the test (`AGENTBUS_REQUIRE_SERVICES=1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_SERVICES).as_deref() == Ok("1")
}

/// The one skip-or-fail rule: `true` when `probe` is `Ok`; otherwise a note on stderr
/// and `false` — or, with `AGENTBUS_REQUIRE_SERVICES=1`, a panic naming `service`, the
/// probe's error and `remedy`.
///
/// # Panics
///
/// When the service is absent and `AGENTBUS_REQUIRE_SERVICES=1`.
#[track_caller]
pub fn available(service: &str, probe: Result<(), String>, remedy: &str) -> bool {
    match probe {
        Ok(()) => true,
        Err(error) => {
            assert!(
                !required(),
                "{service} is required ({REQUIRE_SERVICES}=1) but not available: {error}; {remedy}"
            );
            eprintln!(
                "note: skipping: {service} is not available ({error}); {remedy}, or set \
                 {REQUIRE_SERVICES}=1 to make that a failure"
            );
            false
        }
    }
}

/// The PostgreSQL server of the tests: `AGENTBUS_TEST_PG_URL`, by default
/// `postgres://postgres@127.0.0.1:5432/test`.
pub fn pg_url() -> String {
    std::env::var("AGENTBUS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url` with its passwords (user info and `password=` query) replaced by `***`, for
/// messages: the store's own [`agentbus_store::mask_url`].
///
/// # Examples
///
/// ```
/// use agentbus_test_support::services::mask_password;
///
/// assert_eq!(mask_password("postgres://app:hunter2@db/test"), "postgres://app:***@db/test");
/// assert_eq!(mask_password("postgres://app@db/test"), "postgres://app@db/test");
/// ```
#[cfg(feature = "postgres")]
pub fn mask_password(url: &str) -> String {
    agentbus_store::mask_url(url)
}

/// Whether the test PostgreSQL server ([`pg_url`]) accepts a connection (probed once per
/// process, with a 3 s connect timeout). When it does not, see the [module](self) rule.
///
/// # Panics
///
/// When it is not reachable and `AGENTBUS_REQUIRE_SERVICES=1`.
#[cfg(feature = "postgres")]
#[track_caller]
pub fn postgres_available() -> bool {
    static PROBE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        let url = pg_url();
        // The synchronous client runs its own runtime: keep it off the caller's thread,
        // which may be inside one.
        std::thread::spawn(move || {
            let mut config: postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
            config.connect_timeout(std::time::Duration::from_secs(3));
            config
                .connect(postgres::NoTls)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the probe panicked".into()))
    });
    available(
        &format!("PostgreSQL at {}", mask_password(&pg_url())),
        probe.clone(),
        "start it or point AGENTBUS_TEST_PG_URL at one",
    )
}

/// Whether the embedded model is pulled and converted in `$AGENTBUS_HOME` (`agentbus
/// model pull`). When it is not, see the [module](self) rule.
///
/// # Panics
///
/// When it is not ready and `AGENTBUS_REQUIRE_SERVICES=1`.
#[cfg(feature = "model")]
#[track_caller]
pub fn model_ready() -> bool {
    use agentbus_local::convert::{Q8Status, q8_status};
    use agentbus_local::pull::{ModelStatus, status};
    use agentbus_local::{DEFAULT_MODEL, ModelDir};
    let probe = ModelDir::from_env()
        .map_err(|e| e.to_string())
        .and_then(|dir| {
            let pulled = status(&dir, DEFAULT_MODEL).map_err(|e| e.to_string())?;
            let converted = q8_status(&dir, DEFAULT_MODEL).map_err(|e| e.to_string())?;
            match (pulled == ModelStatus::Ready, converted == Q8Status::Ready) {
                (true, true) => Ok(()),
                (false, _) => Err(format!("{} is not pulled", DEFAULT_MODEL.name)),
                (true, false) => Err(format!("{} is not converted to q8", DEFAULT_MODEL.name)),
            }
        });
    available("the embedded model", probe, "run `agentbus model pull`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn masks_only_the_password() {
        assert_eq!(
            mask_password("postgres://u:p@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(mask_password("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(mask_password("no url"), "no url");
    }

    #[test]
    fn a_present_service_is_available() {
        assert!(available("x", Ok(()), "y"));
    }
}
