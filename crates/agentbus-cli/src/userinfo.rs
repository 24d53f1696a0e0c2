//! Masking the `user:password@` part of URLs before the CLI shows them.
//!
//! [`mask_userinfo`] works on any text (an error message that quotes a URL, a config
//! value): every `scheme://userinfo@host` in it becomes `scheme://user:***@host`, or
//! `scheme://***@host` when the userinfo has no `:` (a bare token is a secret too).

use std::borrow::Cow;

/// `text` with the userinfo of every URL in it masked.
///
/// ```ignore
/// assert_eq!(
///     mask_userinfo("connecting to postgres://app:s3cret@db:5432/x failed"),
///     "connecting to postgres://app:***@db:5432/x failed"
/// );
/// ```
pub fn mask_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the path, query, fragment, or anything that cannot be in
        // a URL (whitespace, quotes, brackets around a quoted URL).
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`') || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at_sign) => {
                let userinfo = &authority[..at_sign];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str("***"),
                }
                out.push_str(&authority[at_sign..]);
                changed = true;
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_and_tokens_in_any_text() {
        assert_eq!(
            mask_userinfo("postgres://app:s3cret@db:5432/x?sslmode=disable"),
            "postgres://app:***@db:5432/x?sslmode=disable"
        );
        assert_eq!(
            mask_userinfo("error: GET https://ghp_token@example.com/v1 and http://u:p@h failed"),
            "error: GET https://***@example.com/v1 and http://u:***@h failed"
        );
        // A password that contains `@`: everything up to the last `@` is userinfo.
        assert_eq!(mask_userinfo("http://u:p@ss@host/"), "http://u:***@host/");
        assert_eq!(mask_userinfo("'http://u:p@h'"), "'http://u:***@h'");
    }

    #[test]
    fn leaves_text_without_userinfo_alone() {
        for text in [
            "http://127.0.0.1:8080/v1",
            "sqlite://agentbus.db",
            "mail me at a@b.c",
            "no url",
            "http://host/path@not-userinfo",
            "ends with ://",
        ] {
            assert!(matches!(mask_userinfo(text), Cow::Borrowed(_)), "{text}");
        }
    }
}
