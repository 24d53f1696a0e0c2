//! Opening a store's backend: for writing (create and migrate) or for reading only.

use crate::backend::Backend;
use crate::error::{Result, StoreError};
use crate::location::StoreLocation;
use crate::migrations::LATEST_VERSION;
#[cfg(feature = "postgres")]
use crate::postgres::PostgresBackend;
#[cfg(feature = "sqlite")]
use crate::sqlite::SqliteBackend;

/// Opens the store at `location` for writing, creating it or migrating it to the latest
/// schema.
pub fn open_backend(location: &StoreLocation) -> Result<Box<dyn Backend>> {
    open_backend_at_version(location, LATEST_VERSION)
}

/// Opens the store at `location`, migrating it no further than `version` (for tests of
/// migrations; use [`open_backend`] otherwise).
pub fn open_backend_at_version(location: &StoreLocation, version: i64) -> Result<Box<dyn Backend>> {
    match location {
        #[cfg(feature = "sqlite")]
        StoreLocation::Sqlite { path } => Ok(Box::new(SqliteBackend::open(path, version)?)),
        #[cfg(feature = "postgres")]
        StoreLocation::Postgres { url, schema } => Ok(Box::new(PostgresBackend::open(
            url,
            schema.as_deref(),
            version,
        )?)),
        #[allow(unreachable_patterns)]
        _ => {
            let _ = version;
            Err(not_built(location))
        }
    }
}

/// Opens the existing store at `location` for reading only: nothing is created, migrated
/// or switched (no WAL switch on SQLite), a missing store is
/// [`StoreError::NotFound`](crate::StoreError::NotFound), and a store another connection
/// holds locked is [`StoreError::Locked`](crate::StoreError::Locked) after a short wait.
/// Every write through the backend is refused by the database.
pub fn open_backend_read_only(location: &StoreLocation) -> Result<Box<dyn Backend>> {
    match location {
        #[cfg(feature = "sqlite")]
        StoreLocation::Sqlite { path } => Ok(Box::new(SqliteBackend::open_read_only(path)?)),
        #[cfg(feature = "postgres")]
        StoreLocation::Postgres { url, schema } => Ok(Box::new(PostgresBackend::open_read_only(
            url,
            schema.as_deref(),
        )?)),
        #[allow(unreachable_patterns)]
        _ => Err(not_built(location)),
    }
}

/// The error for a store whose backend this build was compiled without (reached only in
/// builds without the `sqlite` or `postgres` feature).
pub(crate) fn not_built(location: &StoreLocation) -> StoreError {
    let (backend, feature) = match location {
        StoreLocation::Sqlite { .. } => ("SQLite", "sqlite"),
        StoreLocation::Postgres { .. } => ("PostgreSQL", "postgres"),
    };
    StoreError::BackendNotBuilt {
        location: location.to_string(),
        backend,
        feature,
    }
}
