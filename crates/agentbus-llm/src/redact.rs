//! Keeping credentials out of what is shown: [`mask_url`] hides the userinfo of a URL,
//! [`Redactor`] removes API keys and auth values from text a server sent.
//!
//! Every server message this crate turns into an error (HTTP error bodies, in-band
//! errors, previews of invalid chunks, transport errors) goes through a [`Redactor`]
//! before it is logged or put in an event; every URL it logs or reports goes through
//! [`mask_url`] / [`mask_urls_in`].
//!
//! ```
//! use agentbus_llm::redact::{Redactor, mask_url};
//!
//! assert_eq!(mask_url("http://user:hunter2@host:8080/v1"), "http://user:***@host:8080/v1");
//! let redactor = Redactor::with_key("sk-proj-0123456789abcdef");
//! let echoed = "Incorrect API key provided: Bearer sk-proj-0123456789abcdef";
//! assert_eq!(redactor.redact(echoed), "Incorrect API key provided: Bearer [REDACTED]");
//! ```

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// `scheme://user:password@` or `scheme://token@`.
static USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s/?#@:]*)(?P<password>:[^\s/?#@]*)?@",
    )
    .expect("valid pattern")
});

/// `Bearer <token>` / `Basic <credentials>`.
static AUTH_SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?P<scheme>bearer|basic)(?P<space>\s+)[A-Za-z0-9._~+/=*\-]+")
        .expect("valid pattern")
});

/// `x-api-key: value`, `"api_key": "value"`, `api-key=value`, `?key=value`.
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<name>\b(?:x-api-key|api[_-]?key|access[_-]?token)|[?&]key)(?P<sep>["']?\s*[:=]\s*["']?)[^\s"',;&<>]+"#,
    )
    .expect("valid pattern")
});

/// OpenAI-style secret keys: `sk-...`, `sk-proj-...`, `sk-ant-...` (masked echoes with
/// `*` included).
static SK_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bsk-[A-Za-z0-9_*\-]{8,}").expect("valid pattern"));

/// Hides the userinfo of `url`: `http://user:pass@host/` → `http://user:***@host/`,
/// `https://token@host/` → `https://***@host/`. Anything else is returned unchanged.
///
/// ```
/// use agentbus_llm::redact::mask_url;
/// assert_eq!(mask_url("postgres://app:s3cret@db/test"), "postgres://app:***@db/test");
/// assert_eq!(mask_url("https://ghp_token@example.com/x"), "https://***@example.com/x");
/// assert_eq!(mask_url("http://127.0.0.1:8080/v1"), "http://127.0.0.1:8080/v1");
/// ```
pub fn mask_url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return Cow::Borrowed(url);
    };
    let start = scheme_end + 3;
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |offset| start + offset);
    let Some(at) = url[start..authority_end].rfind('@') else {
        return Cow::Borrowed(url);
    };
    let userinfo = &url[start..start + at];
    let masked = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    Cow::Owned(format!("{}{masked}{}", &url[..start], &url[start + at..]))
}

/// Hides the userinfo of every URL inside `text` (an error message that quotes a URL).
///
/// ```
/// use agentbus_llm::redact::mask_urls_in;
/// assert_eq!(
///     mask_urls_in("error sending request for url (http://u:p@h/v1/chat)"),
///     "error sending request for url (http://u:***@h/v1/chat)"
/// );
/// ```
pub fn mask_urls_in(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    USERINFO.replace_all(text, |c: &Captures<'_>| {
        if c.name("password").is_some() {
            format!("{}{}:***@", &c["scheme"], &c["user"])
        } else {
            format!("{}***@", &c["scheme"])
        }
    })
}

/// Removes credentials from server text: the key in use (verbatim, and any token that
/// starts with the key's own prefix such as `sk-proj-` or `gsk_`), `Bearer`/`Basic`
/// values, `x-api-key`/`api_key`/`?key=` values, `sk-...` keys, and the userinfo of URLs.
///
/// Cheap to clone; build one per key (compiling the prefix pattern once).
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    key: Option<String>,
    key_prefix: Option<Regex>,
}

impl Redactor {
    /// A redactor for the generic patterns only (no key known).
    pub fn new() -> Self {
        Self::default()
    }

    /// A redactor that also removes `key` and tokens shaped like it. A key shorter than 4
    /// characters is not matched verbatim (it would erase ordinary words).
    pub fn with_key(key: &str) -> Self {
        let key = key.trim();
        if key.len() < 4 {
            return Self::default();
        }
        // The key's prefix up to its first `-` or `_` (`sk-`, `gsk_`, `xai-`), when short.
        let key_prefix = key
            .char_indices()
            .take(8)
            .find(|(_, c)| *c == '-' || *c == '_')
            .map(|(i, _)| &key[..=i])
            .filter(|prefix| prefix.len() >= 3)
            .and_then(|prefix| {
                Regex::new(&format!(
                    r"\b{}[A-Za-z0-9_*\-]{{8,}}",
                    regex::escape(prefix)
                ))
                .ok()
            });
        Self {
            key: Some(key.to_owned()),
            key_prefix,
        }
    }

    /// `text` with every credential replaced by [`REDACTED`] (borrowed when there was
    /// nothing to remove).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        if let Some(key) = &self.key
            && text.contains(key.as_str())
        {
            text = Cow::Owned(text.replace(key.as_str(), REDACTED));
        }
        text = chain(text, mask_urls_in);
        text = chain(text, |t| {
            AUTH_SCHEME.replace_all(t, "${scheme}${space}[REDACTED]")
        });
        text = chain(text, |t| {
            KEY_VALUE.replace_all(t, "${name}${sep}[REDACTED]")
        });
        text = chain(text, |t| SK_TOKEN.replace_all(t, REDACTED));
        if let Some(prefix) = &self.key_prefix {
            text = chain(text, |t| prefix.replace_all(t, REDACTED));
        }
        text
    }

    /// Redacts `text` in place.
    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(redacted) = self.redact(text) {
            *text = redacted;
        }
    }
}

/// Applies `step` to `text`, keeping it borrowed when nothing changed.
fn chain<'a>(text: Cow<'a, str>, step: impl for<'b> Fn(&'b str) -> Cow<'b, str>) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(t) => step(t),
        Cow::Owned(t) => match step(&t) {
            Cow::Borrowed(_) => Cow::Owned(t),
            Cow::Owned(changed) => Cow::Owned(changed),
        },
    }
}

/// Generic redaction (no key known): [`Redactor::new`]`.redact(text)`.
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    static GENERIC: LazyLock<Redactor> = LazyLock::new(Redactor::new);
    GENERIC.redact(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_userinfo_only() {
        assert_eq!(mask_url("http://u:p@h/x@y"), "http://u:***@h/x@y");
        assert_eq!(mask_url("http://h/x@y"), "http://h/x@y");
        assert_eq!(mask_url("not a url"), "not a url");
        assert_eq!(mask_url("http://u:p:q@h"), "http://u:***@h");
        assert_eq!(
            mask_urls_in("a http://u:p@h/ b https://t@k/ c http://h/@x"),
            "a http://u:***@h/ b https://***@k/ c http://h/@x"
        );
    }

    #[test]
    fn keys_and_auth_values_are_removed() {
        let key = "sk-proj-AbCdEf0123456789xyz";
        let r = Redactor::with_key(key);
        for (input, leaked) in [
            (format!("Incorrect API key provided: {key}."), key),
            (format!("Authorization: Bearer {key}"), key),
            ("bearer abcdef.ghi".to_owned(), "abcdef.ghi"),
            (
                "{\"x-api-key\": \"secret-value\"}".to_owned(),
                "secret-value",
            ),
            ("x-api-key: other-secret".to_owned(), "other-secret"),
            ("GET /v1?key=AIzaSyXYZ&alt=sse".to_owned(), "AIzaSyXYZ"),
            ("sk-ant-api03-zzzzzzzzzz".to_owned(), "zzzzzzzzzz"),
            ("provided: sk-proj-****************wxyz".to_owned(), "wxyz"),
            ("sk-proj-OTHERKEY12345".to_owned(), "OTHERKEY12345"),
        ] {
            let out = r.redact(&input);
            assert!(!out.contains(leaked), "{input} -> {out}");
            assert!(out.contains(REDACTED), "{input} -> {out}");
        }
        // A Groq-style key: tokens with its prefix go too.
        let r = Redactor::with_key("gsk_0123456789abcdefghij");
        assert_eq!(r.redact("key gsk_98765432109876 bad"), "key [REDACTED] bad");
        // Nothing to remove: borrowed, unchanged.
        assert!(matches!(
            r.redact("invalid_api_key: check your key"),
            Cow::Borrowed(_)
        ));
    }
}
