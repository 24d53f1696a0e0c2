//! Keeping untrusted text from driving the user's terminal.
//!
//! Model text, tool output and server error messages come from elsewhere; printed raw,
//! an escape sequence in them could write the clipboard (OSC 52), clear the screen,
//! retitle the window, hide text or move the cursor over earlier output. The human output
//! of every command passes such text through [`sanitize`] (one string) or a
//! [`Sanitizer`] (a stream cut into deltas, where a sequence may span two deltas). Both
//! drop every escape sequence (CSI, OSC, DCS, SOS/PM/APC, two-byte `ESC x`) and every
//! C0 and C1 control character except `\n` and `\t`; printable text, emoji and other
//! scripts pass unchanged. `--events` JSON keeps the text as it came: JSON escapes the
//! control characters there.
//!
//! The escape-sequence grammar is `anstyle-parse`'s (the DEC ANSI parser state machine
//! clap's own output uses), so a sequence is removed whole, parameters and all.

use std::borrow::Cow;

use anstyle_parse::{Parser, Perform};

/// Strips terminal control from a stream of text that arrives in pieces.
///
/// ```ignore
/// let mut sanitizer = Sanitizer::default();
/// assert_eq!(sanitizer.clean("copy \x1b]52;c;aGk="), "copy ");
/// assert_eq!(sanitizer.clean("\x07done\n"), "done\n");
/// ```
#[derive(Debug, Default)]
pub struct Sanitizer {
    parser: Parser,
}

/// The printable part of what the parser sees.
struct Printable<'a>(&'a mut String);

impl Perform for Printable<'_> {
    fn print(&mut self, c: char) {
        // `is_control` is Unicode's Cc: C0, DEL and C1 (U+0080..U+009F).
        if !c.is_control() {
            self.0.push(c);
        }
    }

    fn execute(&mut self, byte: u8) {
        if byte == b'\n' || byte == b'\t' {
            self.0.push(char::from(byte));
        }
    }
}

impl Sanitizer {
    /// The printable part of `text`, continuing any sequence an earlier piece began.
    pub fn clean(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut printable = Printable(&mut out);
        for &byte in text.as_bytes() {
            self.parser.advance(&mut printable, byte);
        }
        out
    }
}

/// `text` without terminal control (see the module documentation); borrowed when there
/// was none.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if text
        .chars()
        .all(|c| c == '\n' || c == '\t' || !c.is_control())
    {
        return Cow::Borrowed(text);
    }
    Cow::Owned(Sanitizer::default().clean(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_osc_52_screen_clears_and_controls() {
        // OSC 52 (write the clipboard), ended by BEL and by ST.
        assert_eq!(sanitize("a\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07b"), "ab");
        assert_eq!(sanitize("a\x1b]52;c;aGk=\x1b\\b"), "ab");
        // Clear the screen and home the cursor; colours; a window title.
        assert_eq!(sanitize("\x1b[2J\x1b[Hclean"), "clean");
        assert_eq!(sanitize("\x1b[31mred\x1b[0m"), "red");
        assert_eq!(sanitize("\x1b]0;pwned\x07title"), "title");
        // C0 (BEL, CR, backspace), DEL and C1 (CSI as one code point) controls.
        assert_eq!(sanitize("x\x07y\rz\x08w\x7fv"), "xyzwv");
        assert_eq!(sanitize("p\u{9b}2Jq\u{9d}r"), "p2Jqr");
        // A DCS string.
        assert_eq!(sanitize("\x1bPq#0;2;0;0;0\x1b\\ok"), "ok");
    }

    #[test]
    fn keeps_text_newlines_tabs_and_other_scripts() {
        let text = "line 1\n\tline 2 — café, 日本語, 🙂 [x] (y) {z}";
        assert!(matches!(sanitize(text), Cow::Borrowed(_)));
        assert_eq!(sanitize(&format!("{text}\x1b[K")), text);
    }

    #[test]
    fn a_sequence_split_across_pieces_is_still_removed() {
        let mut sanitizer = Sanitizer::default();
        let pieces = [
            "before \x1b",
            "]52;c;",
            "ZXZpbA==",
            "\x07 after",
            " \x1b[",
            "2J end",
        ];
        let out: String = pieces.iter().map(|piece| sanitizer.clean(piece)).collect();
        assert_eq!(out, "before  after  end");
    }
}
