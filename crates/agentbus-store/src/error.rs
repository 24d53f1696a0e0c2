//! [`StoreError`]: everything that can go wrong opening, writing or reading a store.

use thiserror::Error;

/// An event store operation failed. Every variant says what and where.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store URL could not be understood.
    #[error("invalid store URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given (PostgreSQL passwords are masked).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The SQLite file exists but is not a SQLite database; it was left untouched.
    #[error("`{path}` is not a SQLite database (left untouched): {message}")]
    NotADatabase {
        /// The file.
        path: String,
        /// What SQLite reported.
        message: String,
    },
    /// A reading command named a store that does not exist; nothing was created.
    #[error(
        "no event store at `{location}` (nothing was created; check the path or URL given with --store)"
    )]
    NotFound {
        /// Where the store was looked for.
        location: String,
    },
    /// The database exists but holds no agentbus store yet (opened read-only, it is not
    /// created).
    #[error("`{location}` holds no agentbus event store yet (nothing was changed)")]
    NoStore {
        /// Where the database is.
        location: String,
    },
    /// Another connection holds the store locked; the read gave up instead of waiting.
    #[error(
        "the store `{location}` is locked by another connection{holders} and stayed locked for \
         {waited_ms} ms; nothing was changed — try again when it is released"
    )]
    Locked {
        /// The store.
        location: String,
        /// Who holds it open, when known: ` (held open by pid 12 `agentbus`)`, or empty.
        holders: String,
        /// How long the read waited.
        waited_ms: u64,
    },
    /// The database holds tables of something else and no agentbus store; it was left untouched.
    #[error(
        "`{location}` is a database of something else, not an agentbus event store (left untouched)"
    )]
    ForeignDatabase {
        /// Where the database is.
        location: String,
    },
    /// The store was written by a newer agentbus whose schema this build does not know.
    #[error(
        "the store at `{location}` has schema version {found}; this build knows up to {supported} \
         (upgrade agentbus; the store was left untouched)"
    )]
    SchemaTooNew {
        /// Where the store is.
        location: String,
        /// The version found in the store.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The PostgreSQL server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at `{location}`: {message}")]
    Connect {
        /// The server (password masked).
        location: String,
        /// What the client reported.
        message: String,
    },
    /// The store's backend is not compiled into this build (a Cargo feature of
    /// agentbus-store is off).
    #[error(
        "cannot open `{location}`: this build has no {backend} backend (Cargo feature `{feature}` of agentbus-store)"
    )]
    BackendNotBuilt {
        /// The store (password masked).
        location: String,
        /// The backend it needs.
        backend: &'static str,
        /// The feature that compiles it.
        feature: &'static str,
    },
    /// A SQLite operation failed.
    #[cfg(feature = "sqlite")]
    #[error("SQLite error ({context}): {source}")]
    Sqlite {
        /// What the store was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL operation failed.
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL error ({context}): {source}")]
    Postgres {
        /// What the store was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: postgres::Error,
    },
    /// An event could not be encoded for storage.
    #[error(transparent)]
    Encode(#[from] agentbus_events::EncodeError),
    /// A stored row could not be decoded back into an event.
    #[error("stored event seq {seq} cannot be decoded: {source}")]
    Decode {
        /// The row's store sequence number.
        seq: u64,
        /// Why decoding failed.
        #[source]
        source: agentbus_events::DecodeError,
    },
    /// A stored row holds a value the store cannot have written (a corrupted or hand-edited row).
    #[error("stored event seq {seq} is malformed: {reason}")]
    MalformedRow {
        /// The row's store sequence number.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The writer failed to persist events that had been accepted; they are lost.
    #[error("the store writer failed; {lost} accepted event(s) were not written: {message}")]
    WriteFailed {
        /// How many accepted events were not written.
        lost: u64,
        /// The first error the writer hit.
        message: String,
    },
    /// The store was opened read-only; it cannot be written through this handle.
    #[error("the store `{location}` was opened read-only")]
    ReadOnly {
        /// The store.
        location: String,
    },
    /// The writer has been closed; nothing more can be appended.
    #[error("the store writer is closed")]
    Closed,
    /// The event bus refused: subscribing, waiting or sending failed.
    #[error("event bus: {0}")]
    Bus(String),
    /// No session with this id is in the store.
    #[error("no session `{0}` in the store")]
    UnknownSession(String),
    /// An I/O error outside the database (e.g. creating the store's directory).
    #[error("I/O error ({context}): {source}")]
    Io {
        /// What the store was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { context, source }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(context: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
        move |source| StoreError::Postgres { context, source }
    }
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
