//! Text log fields nobody can forge. The fmt layer's default field formatter writes a
//! `%`-recorded value as it is, so a client's `\n2026-01-01T00:00:00Z ERROR ...` in a
//! query string or a refusal's reason started a line of its own, and an escape code
//! (`\x1b[2J`) reached the operator's terminal. [`EscapedFields`] writes every value that
//! is not plain (letters, digits and `-_.:/@+,;#%`) quoted, with newlines, carriage
//! returns, escape and every other control character escaped, and the message with its
//! control characters escaped, so one event is always one line. JSON logs escape by
//! themselves.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// An error and every source below it, as one line: `outer: inner: innermost`.
pub fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The field formatter of the text logs.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Escaping {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Escaping<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl Escaping<'_> {
    fn separate(&mut self) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        Ok(())
    }

    fn write(&mut self, field: &Field, text: &str, always_quote: bool) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.separate()?;
            if field.name() == "message" {
                return write_unbroken(&mut self.writer, text);
            }
            let name = field.name().trim_start_matches("r#");
            if !always_quote && is_plain(text) {
                write!(self.writer, "{name}={text}")
            } else {
                write!(self.writer, "{name}={}", quoted(text))
            }
        })();
    }
}

impl Visit for Escaping<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value, true);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.write(field, &text, false);
    }
}

/// Whether `text` can stand unquoted: short of anything that could end the field or the
/// line, or be read as another field.
pub fn is_plain(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '-' | '_' | '.' | ':' | '/' | '@' | '+' | ',' | ';' | '#' | '%'
                )
        })
}

/// `text` in double quotes, with quotes, backslashes and every control character escaped
/// (`\n`, `\r`, `\t`, `\u{1b}`...), as Rust's `Debug` for strings writes them.
pub fn quoted(text: &str) -> String {
    format!("{text:?}")
}

/// Writes `text` with its control characters escaped and nothing else changed.
fn write_unbroken(writer: &mut Writer<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(writer, "{}", c.escape_debug())?;
        } else {
            writer.write_char(c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captured_log::Captured;

    fn logged(work: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, work);
        captured.text()
    }

    #[test]
    fn a_clients_newlines_and_escape_codes_stay_inside_one_quoted_field() {
        let forged = "x\n2026-01-01T00:00:00Z ERROR FORGED1\r\x1b[2J\u{7}";
        let log = logged(|| {
            let span = tracing::info_span!("request", path = %forged, id = 7);
            let _inside = span.enter();
            tracing::info!(reason = %forged, code = "conflict", status = 409, "request refused");
            tracing::warn!("a message with {forged} inside");
        });
        assert_eq!(log.lines().count(), 2, "{log}");
        assert!(!log.contains('\x1b') && !log.contains('\r') && !log.contains('\u{7}'));
        assert!(!log.lines().any(|l| l.starts_with("2026-01-01")), "{log}");
        let first = log.lines().next().unwrap();
        assert!(
            first.contains(r#"reason="x\n2026-01-01T00:00:00Z ERROR FORGED1\r\u{1b}[2J\u{7}""#),
            "{first}"
        );
        assert!(first.contains(r#"path="x\n2026"#), "{first}");
        assert!(first.contains("code=\"conflict\" status=409"), "{first}");
        assert!(first.contains("id=7"), "{first}");
        let second = log.lines().nth(1).unwrap();
        assert!(second.contains(r"a message with x\n2026"), "{second}");
    }

    #[test]
    fn plain_values_stay_as_they_were() {
        for plain in ["409", "/orders/12", "journey-42", "a@b.c", "1.5"] {
            assert!(is_plain(plain), "{plain}");
        }
        for not_plain in ["", "a b", "a=b", "\"", "a\\b", "é"] {
            assert!(!is_plain(not_plain), "{not_plain}");
        }
        assert_eq!(quoted("a \"b\"\n"), r#""a \"b\"\n""#);
    }
}
