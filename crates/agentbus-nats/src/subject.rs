//! Subjects: where an event goes in the stream, `agentbus.<session>.<type>`.
//!
//! A NATS subject is a list of tokens separated by `.`; a token may not be empty or contain
//! whitespace, `.`, `*` or `>`. Session ids are arbitrary strings, so the session token is
//! escaped: ASCII letters, digits, `-` and `_` stay as they are, every other byte of its
//! UTF-8 becomes `%XX` (upper-case hex). An escaped token therefore never is `~` and never
//! is `%` alone, which leaves two fixed tokens free: [`NO_SESSION`] (`~`) for an event
//! without a session and `%` for the empty session id. The event type keeps its dots
//! (`plugin.llm_response_chunk` spans two tokens), so a type pattern such as `plugin.*` or `react.>`
//! is a subject filter; each of its parts is escaped the same way.

/// The first token of every agentbus subject.
pub const ROOT: &str = "agentbus";

/// The session token of an event that belongs to no session.
pub const NO_SESSION: &str = "~";

/// Appends `raw` escaped as one subject token to `out`.
fn push_escaped(raw: &str, out: &mut String) {
    if raw.is_empty() {
        out.push('%');
        return;
    }
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        }
    }
}

/// The escaped session token: [`NO_SESSION`] for `None`.
///
/// ```
/// use agentbus_nats::subject::session_token;
/// assert_eq!(session_token(Some("run-7")), "run-7");
/// assert_eq!(session_token(Some("a.b c")), "a%2Eb%20c");
/// assert_eq!(session_token(None), "~");
/// assert_eq!(session_token(Some("~")), "%7E");
/// ```
pub fn session_token(session: Option<&str>) -> String {
    match session {
        None => NO_SESSION.to_owned(),
        Some(s) => {
            let mut out = String::with_capacity(s.len());
            push_escaped(s, &mut out);
            out
        }
    }
}

/// Undoes [`session_token`]: `None` for [`NO_SESSION`], `Err` naming the token when it is
/// not something `session_token` produces.
///
/// ```
/// use agentbus_nats::subject::{session_token, parse_session_token};
/// let id = "ünïcode/session 1";
/// assert_eq!(parse_session_token(&session_token(Some(id))).unwrap().as_deref(), Some(id));
/// assert_eq!(parse_session_token("~").unwrap(), None);
/// ```
pub fn parse_session_token(token: &str) -> Result<Option<String>, String> {
    if token == NO_SESSION {
        return Ok(None);
    }
    if token == "%" {
        return Ok(Some(String::new()));
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = token
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad escape in session token `{token}`"))?;
                out.push(hex);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' => {
                out.push(b);
                i += 1;
            }
            _ => return Err(format!("unescaped byte in session token `{token}`")),
        }
    }
    String::from_utf8(out)
        .map(Some)
        .map_err(|_| format!("session token `{token}` is not UTF-8"))
}

/// The type part of a subject: each dot-separated part escaped (a catalogue type such as
/// `plugin.llm_response_chunk` stays as it is). A `*` or `>` part is kept as a
/// wildcard when `wildcards` is true (for filters).
fn type_tokens(event_type: &str, wildcards: bool, out: &mut String) {
    for (i, part) in event_type.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if wildcards && (part == "*" || part == ">") {
            out.push_str(part);
        } else {
            push_escaped(part, out);
        }
    }
}

/// The subject an event is published on.
///
/// ```
/// use agentbus_nats::subject::event_subject;
/// assert_eq!(
///     event_subject(Some("s1"), "plugin.llm_response_chunk"),
///     "agentbus.s1.plugin.llm_response_chunk"
/// );
/// assert_eq!(event_subject(None, "base.exception"), "agentbus.~.base.exception");
/// ```
pub fn event_subject(session: Option<&str>, event_type: &str) -> String {
    let mut out = String::with_capacity(ROOT.len() + 2 + event_type.len() + 40);
    out.push_str(ROOT);
    out.push('.');
    match session {
        None => out.push_str(NO_SESSION),
        Some(s) => push_escaped(s, &mut out),
    }
    out.push('.');
    type_tokens(event_type, false, &mut out);
    out
}

/// A subject filter selecting one session (or every session with `None`) and one type
/// pattern (or every type with `None`). A pattern is a type with `*` for one part and a
/// final `>` for the rest, as in NATS: `plugin.*`, `react.>`, `react.llm_call_end`.
///
/// ```
/// use agentbus_nats::subject::filter_subject;
/// assert_eq!(filter_subject(None, None), "agentbus.>");
/// assert_eq!(filter_subject(Some("s1"), None), "agentbus.s1.>");
/// assert_eq!(filter_subject(None, Some("plugin.*")), "agentbus.*.plugin.*");
/// ```
pub fn filter_subject(session: Option<&str>, type_pattern: Option<&str>) -> String {
    let mut out = String::from(ROOT);
    out.push('.');
    match session {
        None => out.push('*'),
        Some(s) => push_escaped(s, &mut out),
    }
    out.push('.');
    match type_pattern {
        None => out.push('>'),
        Some(p) => type_tokens(p, true, &mut out),
    }
    if out == format!("{ROOT}.*.>") {
        return format!("{ROOT}.>");
    }
    out
}

/// Whether `event_type` matches the type `pattern` (same rules as [`filter_subject`]).
///
/// ```
/// use agentbus_nats::subject::type_matches;
/// assert!(type_matches("plugin.*", "plugin.llm_response_chunk"));
/// assert!(!type_matches("plugin.*", "react.llm_call_end"));
/// assert!(type_matches("react.>", "react.llm_call_end"));
/// ```
pub fn type_matches(pattern: &str, event_type: &str) -> bool {
    let mut parts = event_type.split('.');
    for p in pattern.split('.') {
        if p == ">" {
            return parts.next().is_some();
        }
        match parts.next() {
            Some(t) if p == "*" || p == t => {}
            _ => return false,
        }
    }
    parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legal_token(t: &str) -> bool {
        !t.is_empty()
            && !t
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b"*>.".contains(&b))
    }

    #[test]
    fn every_session_id_gives_legal_tokens_that_round_trip() {
        for id in [
            "", "_", "~", "%", "a.b", "*", ">", "x y\tz", "ünï", "run-1", "%41", "a\u{0}b",
        ] {
            let token = session_token(Some(id));
            assert!(legal_token(&token), "{id:?} -> {token:?}");
            assert_ne!(token, NO_SESSION);
            assert_eq!(parse_session_token(&token).unwrap().as_deref(), Some(id));
        }
    }

    #[test]
    fn subjects_have_the_expected_tokens() {
        let s = event_subject(Some("a.b"), "react.llm_call_end");
        let tokens: Vec<&str> = s.split('.').collect();
        assert_eq!(tokens, ["agentbus", "a%2Eb", "react", "llm_call_end"]);
        assert!(tokens.iter().all(|t| legal_token(t)));
    }

    #[test]
    fn bad_tokens_are_errors() {
        assert!(parse_session_token("%4").is_err());
        assert!(parse_session_token("a~b").is_err());
        assert!(parse_session_token("%FF").is_err());
    }

    #[test]
    fn type_patterns() {
        assert!(type_matches("tool.execution_end", "tool.execution_end"));
        assert!(!type_matches("tool", "tool.execution_end"));
        assert!(!type_matches("tool.>", "tool"));
        assert_eq!(
            filter_subject(Some("s"), Some("react.>")),
            "agentbus.s.react.>"
        );
    }
}
