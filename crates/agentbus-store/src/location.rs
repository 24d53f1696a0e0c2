//! [`StoreLocation`]: where a store lives, parsed from a URL.
//!
//! - `sqlite://agentbus.db` (relative path), `sqlite:///var/lib/agentbus.db` (absolute),
//!   or a bare file path: an embedded SQLite store.
//! - `postgres://user@host:port/db` or `postgresql://…`: a PostgreSQL store. The extra query
//!   parameter `schema=NAME` puts the store's tables in that schema (created if missing),
//!   so several stores can share one database.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::StoreError;

/// The default store: `agentbus.db` in the current directory.
pub const DEFAULT_STORE_URL: &str = "sqlite://agentbus.db";

/// Where a store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// An embedded SQLite database file.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// The connection URL, without the `schema` parameter.
        url: String,
        /// The schema holding the store's tables (`public` when not given).
        schema: Option<String>,
    },
}

impl StoreLocation {
    /// Parses a store URL (see the module documentation).
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: mask_url(url),
            reason: reason.to_owned(),
        };
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(invalid("no file path after `sqlite://`"));
            }
            return Ok(StoreLocation::Sqlite { path: path.into() });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (base, query) = match url.split_once('?') {
                Some((base, query)) => (base, Some(query)),
                None => (url, None),
            };
            let mut schema = None;
            let mut kept = Vec::new();
            for pair in query.into_iter().flat_map(|q| q.split('&')) {
                match pair.split_once('=') {
                    Some(("schema", name)) => {
                        if name.is_empty()
                            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        {
                            return Err(invalid("`schema` must be letters, digits and `_` only"));
                        }
                        schema = Some(name.to_owned());
                    }
                    _ if pair.is_empty() => {}
                    _ => kept.push(pair),
                }
            }
            let url = if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", kept.join("&"))
            };
            return Ok(StoreLocation::Postgres { url, schema });
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(invalid(&format!(
                "unknown scheme `{scheme}`; use sqlite://PATH or postgres://…"
            )));
        }
        if url.is_empty() {
            return Err(invalid("empty URL"));
        }
        Ok(StoreLocation::Sqlite { path: url.into() })
    }
}

impl FromStr for StoreLocation {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for StoreLocation {
    /// The URL, with any PostgreSQL password masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite { path } => write!(f, "sqlite://{}", path.display()),
            StoreLocation::Postgres { url, schema } => {
                f.write_str(&mask_url(url))?;
                if let Some(schema) = schema {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    write!(f, "{sep}schema={schema}")?;
                }
                Ok(())
            }
        }
    }
}

/// `url` fit to show: the password of `user:password@` and any `password=` query parameter
/// replaced by `***`. Use it wherever a store URL is printed or logged.
///
/// ```
/// use agentbus_store::mask_url;
/// assert_eq!(
///     mask_url("postgres://app:s3cret@db:5432/events?password=x&sslmode=disable"),
///     "postgres://app:***@db:5432/events?password=***&sslmode=disable"
/// );
/// assert_eq!(mask_url("sqlite://agentbus.db"), "sqlite://agentbus.db");
/// ```
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = format!("{scheme}://");
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => out.push_str(&format!("{user}:***@{host}")),
            None => out.push_str(authority),
        },
        None => out.push_str(authority),
    }
    let tail = &rest[authority_end..];
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_forms() {
        assert_eq!(
            StoreLocation::parse("sqlite://agentbus.db").unwrap(),
            StoreLocation::Sqlite {
                path: "agentbus.db".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("sqlite:///tmp/x.db").unwrap(),
            StoreLocation::Sqlite {
                path: "/tmp/x.db".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("data/x.db").unwrap(),
            StoreLocation::Sqlite {
                path: "data/x.db".into()
            }
        );
        assert!(StoreLocation::parse("sqlite://").is_err());
        assert!(StoreLocation::parse("mysql://x").is_err());
    }

    #[test]
    fn parses_postgres_schema_and_masks_password() {
        let loc = StoreLocation::parse("postgres://u:secret@h:5432/db?schema=s1&sslmode=disable")
            .unwrap();
        assert_eq!(
            loc,
            StoreLocation::Postgres {
                url: "postgres://u:secret@h:5432/db?sslmode=disable".into(),
                schema: Some("s1".into())
            }
        );
        let shown = loc.to_string();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("schema=s1"), "{shown}");
        assert!(StoreLocation::parse("postgres://h/db?schema=a;drop").is_err());
    }

    #[test]
    fn masks_every_form_of_password() {
        for (url, secret) in [
            ("postgres://u:hunter2@h/db", "hunter2"),
            ("postgresql://u:hunter2@h:1?sslmode=disable", "hunter2"),
            ("postgres://h/db?user=u&password=hunter2", "hunter2"),
            ("postgres://u:p%40ss@h/db", "p%40ss"),
            ("postgres://u:a@b@h/db", "a@b"),
        ] {
            let shown = mask_url(url);
            assert!(!shown.contains(secret), "{url} -> {shown}");
            assert!(shown.contains("***"), "{url} -> {shown}");
        }
        assert_eq!(mask_url("data/x.db"), "data/x.db");
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
