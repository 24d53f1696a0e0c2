//! [`EventQuery`]: which stored events to read.

use chrono::{DateTime, Utc};

/// A selection of stored events, always returned in store order (`seq` ascending).
///
/// Every criterion that is set must match; an empty query selects everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    /// Only events of this session.
    pub session_id: Option<String>,
    /// Only events whose `type` is one of these (ignored when empty).
    pub types: Vec<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only events of this LLM request.
    pub request_id: Option<String>,
    /// Only events of this agent call.
    pub agent_call_id: Option<String>,
    /// Only events with a store `seq` greater than this.
    pub after_seq: Option<u64>,
    /// At most this many events.
    pub limit: Option<u64>,
}

impl EventQuery {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// The events of `session_id`.
    pub fn session(session_id: impl Into<String>) -> Self {
        Self {
            session_id: Some(session_id.into()),
            ..Self::default()
        }
    }

    /// The events of one `type`.
    pub fn of_type(event_type: impl Into<String>) -> Self {
        Self {
            types: vec![event_type.into()],
            ..Self::default()
        }
    }

    /// The events of one LLM request.
    pub fn request(request_id: impl Into<String>) -> Self {
        Self {
            request_id: Some(request_id.into()),
            ..Self::default()
        }
    }

    /// The events in `[since, until)`.
    pub fn between(since: DateTime<Utc>, until: DateTime<Utc>) -> Self {
        Self {
            since: Some(since),
            until: Some(until),
            ..Self::default()
        }
    }

    /// This query restricted to `types`.
    pub fn with_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// The WHERE clause (with `?N` or `$N` placeholders) and its parameters.
    pub(crate) fn to_sql(&self, dialect: Dialect) -> (String, Vec<SqlParam>) {
        let mut clauses = Vec::new();
        let mut params = Vec::new();
        let push = |clause: &str,
                    param: SqlParam,
                    params: &mut Vec<SqlParam>,
                    clauses: &mut Vec<String>| {
            params.push(param);
            clauses.push(clause.replace('#', &dialect.placeholder(params.len())));
        };
        if let Some(s) = &self.session_id {
            push(
                "session_id = #",
                SqlParam::Text(s.clone()),
                &mut params,
                &mut clauses,
            );
        }
        if !self.types.is_empty() {
            let mut parts = Vec::new();
            for t in &self.types {
                params.push(SqlParam::Text(t.clone()));
                parts.push(dialect.placeholder(params.len()));
            }
            clauses.push(format!("type IN ({})", parts.join(", ")));
        }
        if let Some(t) = self.since {
            push(
                "ts_us >= #",
                SqlParam::Int(t.timestamp_micros()),
                &mut params,
                &mut clauses,
            );
        }
        if let Some(t) = self.until {
            push(
                "ts_us < #",
                SqlParam::Int(t.timestamp_micros()),
                &mut params,
                &mut clauses,
            );
        }
        if let Some(r) = &self.request_id {
            push(
                "request_id = #",
                SqlParam::Text(r.clone()),
                &mut params,
                &mut clauses,
            );
        }
        if let Some(a) = &self.agent_call_id {
            push(
                "agent_call_id = #",
                SqlParam::Text(a.clone()),
                &mut params,
                &mut clauses,
            );
        }
        if let Some(s) = self.after_seq {
            push(
                "seq > #",
                SqlParam::Int(i64::try_from(s).unwrap_or(i64::MAX)),
                &mut params,
                &mut clauses,
            );
        }
        let mut sql = String::new();
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY seq");
        if let Some(limit) = self.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        (sql, params)
    }
}

/// Which SQL dialect to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }
}

/// A query parameter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SqlParam {
    Text(String),
    Int(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_where_clauses_in_order() {
        let q = EventQuery {
            session_id: Some("s".into()),
            types: vec!["a".into(), "b".into()],
            after_seq: Some(3),
            limit: Some(10),
            ..EventQuery::default()
        };
        let (sql, params) = q.to_sql(Dialect::Postgres);
        assert_eq!(
            sql,
            " WHERE session_id = $1 AND type IN ($2, $3) AND seq > $4 ORDER BY seq LIMIT 10"
        );
        assert_eq!(params.len(), 4);
        let (sql, _) = EventQuery::all().to_sql(Dialect::Sqlite);
        assert_eq!(sql, " ORDER BY seq");
    }
}
