//! The model's tool-call format, parsed out of the streamed text.
//!
//! SmolLM2-Instruct was trained to call tools by writing
//! `<tool_call>[{"name": "...", "arguments": {...}}, ...]</tool_call>` (a JSON list, or a
//! single object) in its answer. [`ToolCallParser`] takes the text piece by piece as it
//! streams and separates ordinary text, which can be shown at once, from tool calls, which
//! are held back until complete and then parsed. Text that might be the start of
//! `<tool_call>` is held back until it is clear that it is not.
//!
//! A 135M-parameter model calls tools unreliably: it may answer in prose instead, invent
//! tools, or write malformed JSON. A call whose JSON cannot be parsed into names and
//! arguments is given back as text, so nothing the model wrote is lost.

/// The tag that opens a tool call.
pub const OPEN_TAG: &str = "<tool_call>";
/// The tag that closes a tool call.
pub const CLOSE_TAG: &str = "</tool_call>";

/// One parsed tool call.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedToolCall {
    /// The tool's name.
    pub name: String,
    /// The arguments (an object; `{}` when the model gave none).
    pub arguments: serde_json::Value,
}

/// A piece of the parsed stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    /// Ordinary text.
    Text(String),
    /// One complete tool call.
    ToolCall(ParsedToolCall),
}

/// Splits streamed text into [`Segment`]s.
#[derive(Clone, Debug, Default)]
pub struct ToolCallParser {
    /// Text received and not yet given out.
    buffer: String,
    /// Whether `buffer` is inside `<tool_call>...`.
    inside: bool,
    /// Inside a call, how much of `buffer` was searched for a close tag that ends it.
    searched: usize,
    /// Everything is text: no call is looked for (tool choice `none`).
    text_only: bool,
}

impl ToolCallParser {
    /// A parser at the start of a response.
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser that gives everything back as text (for tool choice `none`).
    pub fn text_only() -> Self {
        Self {
            text_only: true,
            ..Self::default()
        }
    }

    /// Takes the next piece of text; returns what is now certain.
    pub fn push(&mut self, piece: &str) -> Vec<Segment> {
        if self.text_only {
            let mut segments = Vec::new();
            push_text(&mut segments, piece);
            return segments;
        }
        self.buffer.push_str(piece);
        let mut segments = Vec::new();
        loop {
            if self.inside {
                // The first close tag after which the body parses: a close tag inside a
                // JSON string (`"expression": "…</tool_call>…"`) is content.
                let Some(found) = self.buffer[self.searched..].find(CLOSE_TAG) else {
                    self.searched = self.buffer.len().saturating_sub(CLOSE_TAG.len());
                    while !self.buffer.is_char_boundary(self.searched) {
                        self.searched -= 1;
                    }
                    return segments;
                };
                let end = self.searched + found;
                let Some(calls) = parse_calls(&self.buffer[..end]) else {
                    self.searched = end + CLOSE_TAG.len();
                    continue;
                };
                self.buffer.drain(..end + CLOSE_TAG.len());
                self.inside = false;
                self.searched = 0;
                segments.extend(calls.into_iter().map(Segment::ToolCall));
            } else {
                if let Some(start) = self.buffer.find(OPEN_TAG) {
                    push_text(&mut segments, &self.buffer[..start]);
                    self.buffer.drain(..start + OPEN_TAG.len());
                    self.inside = true;
                    continue;
                }
                // Keep back the longest suffix that could begin the open tag.
                let keep = (1..OPEN_TAG.len())
                    .rev()
                    .find(|&len| {
                        self.buffer.len() >= len
                            && self.buffer.is_char_boundary(self.buffer.len() - len)
                            && OPEN_TAG.starts_with(&self.buffer[self.buffer.len() - len..])
                    })
                    .unwrap_or(0);
                let split = self.buffer.len() - keep;
                push_text(&mut segments, &self.buffer[..split]);
                self.buffer.drain(..split);
                return segments;
            }
        }
    }

    /// The stream ended: gives out whatever was held back. An unclosed tool call whose
    /// body parses is still a call (the model often stops right after the JSON).
    pub fn finish(&mut self) -> Vec<Segment> {
        let rest = std::mem::take(&mut self.buffer);
        self.searched = 0;
        let mut segments = Vec::new();
        if std::mem::take(&mut self.inside) {
            // Not closed by a tag after which it parsed: the body is everything up to a
            // last close tag, if there is one.
            match rest.strip_suffix(CLOSE_TAG) {
                Some(body) => segments.extend(parse_body(body)),
                None => segments.extend(parse_body(&rest)),
            }
        } else {
            push_text(&mut segments, &rest);
        }
        segments
    }
}

fn push_text(segments: &mut Vec<Segment>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Segment::Text(last)) = segments.last_mut() {
        last.push_str(text);
    } else {
        segments.push(Segment::Text(text.to_owned()));
    }
}

/// Parses a tool call's body; gives it back as text (tags included) when it is not a
/// call.
fn parse_body(body: &str) -> Vec<Segment> {
    match parse_calls(body) {
        Some(calls) => calls.into_iter().map(Segment::ToolCall).collect(),
        None => vec![Segment::Text(format!("{OPEN_TAG}{body}{CLOSE_TAG}"))],
    }
}

/// The calls in a body: a JSON list of `{"name", "arguments"}` objects, or one object.
/// `None` when the body is not that.
pub fn parse_calls(body: &str) -> Option<Vec<ParsedToolCall>> {
    let value: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        object @ serde_json::Value::Object(_) => vec![object],
        _ => return None,
    };
    items.into_iter().map(parse_call).collect()
}

fn parse_call(item: serde_json::Value) -> Option<ParsedToolCall> {
    let serde_json::Value::Object(mut object) = item else {
        return None;
    };
    let name = match object.remove("name")? {
        serde_json::Value::String(name) if !name.trim().is_empty() => name,
        _ => return None,
    };
    let arguments = match object
        .remove("arguments")
        .or_else(|| object.remove("parameters"))
    {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        // Some models write the arguments as a JSON string, as OpenAI's wire format does.
        Some(serde_json::Value::String(text)) => match serde_json::from_str(&text) {
            Ok(value @ serde_json::Value::Object(_)) => value,
            _ => return None,
        },
        Some(value @ serde_json::Value::Object(_)) => value,
        Some(_) => return None,
    };
    Some(ParsedToolCall { name, arguments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(pieces: &[&str]) -> Vec<Segment> {
        let mut parser = ToolCallParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            for segment in parser.push(piece) {
                match (out.last_mut(), segment) {
                    (Some(Segment::Text(last)), Segment::Text(text)) => last.push_str(&text),
                    (_, segment) => out.push(segment),
                }
            }
        }
        for segment in parser.finish() {
            match (out.last_mut(), segment) {
                (Some(Segment::Text(last)), Segment::Text(text)) => last.push_str(&text),
                (_, segment) => out.push(segment),
            }
        }
        out
    }

    fn call(name: &str, arguments: serde_json::Value) -> Segment {
        Segment::ToolCall(ParsedToolCall {
            name: name.into(),
            arguments,
        })
    }

    #[test]
    fn plain_text_passes_through_including_lookalikes() {
        assert_eq!(
            run(&["a < b", " and <tool", "s> here"]),
            vec![Segment::Text("a < b and <tools> here".into())]
        );
    }

    #[test]
    fn text_is_released_as_soon_as_it_cannot_start_a_tag() {
        let mut parser = ToolCallParser::new();
        assert_eq!(
            parser.push("Hello <to"),
            vec![Segment::Text("Hello ".into())]
        );
        assert_eq!(parser.push("day"), vec![Segment::Text("<today".into())]);
        assert_eq!(parser.finish(), vec![]);
    }

    #[test]
    fn a_list_split_across_pieces_gives_each_call() {
        let out = run(&[
            "Sure.",
            "<tool_",
            "call>[{\"name\": \"add\", \"argu",
            "ments\": {\"a\": 1}}, {\"name\": \"now\"}]</tool",
            "_call> done",
        ]);
        assert_eq!(
            out,
            vec![
                Segment::Text("Sure.".into()),
                call("add", json!({"a": 1})),
                call("now", json!({})),
                Segment::Text(" done".into()),
            ]
        );
    }

    #[test]
    fn single_object_string_arguments_and_unclosed_call() {
        assert_eq!(
            run(&["<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 2}\"}"]),
            vec![call("f", json!({"x": 2}))]
        );
    }

    #[test]
    fn a_close_tag_inside_a_string_is_content() {
        let text = "<tool_call>[{\"name\": \"f\", \"arguments\": {\"x\": \"a}]</tool_call>b\"}}]</tool_call>after";
        for split in [1, 7, 30, 45, text.len() - 3] {
            assert_eq!(
                run(&[&text[..split], &text[split..]]),
                vec![
                    call("f", json!({"x": "a}]</tool_call>b"})),
                    Segment::Text("after".into())
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn malformed_calls_come_back_as_text() {
        assert_eq!(
            run(&["<tool_call>[{\"nom\": 1}]</tool_call>"]),
            vec![Segment::Text(
                "<tool_call>[{\"nom\": 1}]</tool_call>".into()
            )]
        );
        assert_eq!(
            run(&["<tool_call>not json"]),
            vec![Segment::Text("<tool_call>not json</tool_call>".into())]
        );
        assert_eq!(parse_calls("[]"), Some(vec![]));
    }

    #[test]
    fn multibyte_text_near_a_partial_tag_is_not_split() {
        assert_eq!(
            run(&["é<", "tool_callé"]),
            vec![Segment::Text("é<tool_callé".into())]
        );
    }
}
