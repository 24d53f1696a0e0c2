//! [`SentenceSplitter`]: cuts streamed LLM text into sentences to speak one by one, and
//! [`speakable`], which drops what should not be read aloud (Markdown marks).

/// Collects streamed text and hands out whole sentences as soon as they are complete.
///
/// A sentence ends at `.`, `!` or `?` followed by white space, or at a line break; a
/// sentence running past `max_chars` is cut at its last comma or space.
///
/// ```
/// use agentbus_voice::sentences::SentenceSplitter;
///
/// let mut s = SentenceSplitter::default();
/// assert!(s.push("The capital of Fra").is_empty());
/// assert_eq!(s.push("nce is Paris. It is"), vec!["The capital of France is Paris."]);
/// assert_eq!(s.flush(), Some("It is".to_owned()));
/// ```
#[derive(Clone, Debug)]
pub struct SentenceSplitter {
    buffer: String,
    /// Longest sentence handed out whole.
    pub max_chars: usize,
}

impl Default for SentenceSplitter {
    fn default() -> Self {
        Self {
            buffer: String::new(),
            max_chars: 240,
        }
    }
}

impl SentenceSplitter {
    /// Adds `delta`; returns the sentences it completed.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buffer.push_str(delta);
        let mut out = Vec::new();
        loop {
            let cut = self.boundary();
            match cut {
                Some(end) => {
                    let sentence: String = self.buffer.drain(..end).collect();
                    if let Some(s) = speakable(&sentence) {
                        out.push(s);
                    }
                }
                None => break,
            }
        }
        out
    }

    /// The rest of the text, when there is any worth speaking.
    pub fn flush(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buffer);
        speakable(&rest)
    }

    /// Where the first complete sentence ends (byte index), if there is one.
    fn boundary(&self) -> Option<usize> {
        let mut chars = self.buffer.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\n' {
                return Some(i + 1);
            }
            if matches!(c, '.' | '!' | '?')
                && let Some(&(j, next)) = chars.peek()
                && next.is_whitespace()
            {
                return Some(j);
            }
        }
        if self.buffer.len() > self.max_chars {
            let head = &self.buffer[..self.buffer.floor_char_boundary(self.max_chars)];
            let cut = head
                .rfind(',')
                .map(|i| i + 1)
                .or_else(|| head.rfind(' '))
                .filter(|&i| i > 0)
                .unwrap_or(head.len());
            return Some(cut);
        }
        None
    }
}

/// `text` without Markdown emphasis, headings and code marks, trimmed; `None` when
/// nothing speakable is left.
pub fn speakable(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, '*' | '#' | '`' | '_' | '~'))
        .collect();
    let cleaned = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    cleaned
        .chars()
        .any(char::is_alphanumeric)
        .then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_sentence_ends_lines_and_length() {
        let mut s = SentenceSplitter::default();
        let mut got = Vec::new();
        for piece in [
            "Hi",
            "! 3.5 is ",
            "a number.",
            " **Bold** ",
            "line\nnext?",
            " x",
        ] {
            got.extend(s.push(piece));
        }
        assert_eq!(got, vec!["Hi!", "3.5 is a number.", "Bold line", "next?"]);
        assert_eq!(s.flush(), Some("x".into()));
        assert_eq!(s.flush(), None);

        let mut long = SentenceSplitter {
            max_chars: 20,
            ..Default::default()
        };
        let parts = long.push("one two three four, five six seven eight nine");
        assert_eq!(parts[0], "one two three four,");
        assert_eq!(speakable("  *** "), None);
        // Multi-byte text near the cut is not split inside a character.
        let mut wide = SentenceSplitter {
            max_chars: 5,
            ..Default::default()
        };
        assert!(!wide.push("ééééééééé").is_empty());
    }
}
