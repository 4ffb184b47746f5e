//! CSV exports (RFC 4180), sent while they are read: page after page from the database, so
//! a year of orders never sits in memory whole.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::future::Future;

/// `?from=&to=`: an export's period, by when each row was made.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// At or after this time (RFC 3339); open when left out.
    #[param(example = "2026-12-01T00:00:00Z")]
    pub from: Option<String>,
    /// Before this time (RFC 3339); open when left out.
    #[param(example = "2027-01-01T00:00:00Z")]
    pub to: Option<String>,
}

impl Period {
    /// The period as stored timestamps compare, each end checked (422 naming it).
    pub fn parse(&self) -> Result<(Option<String>, Option<String>), crate::domain::Invalid> {
        let time = |name: &str, raw: Option<&str>| {
            raw.map(|raw| crate::clock::rfc3339_field(name, raw))
                .transpose()
        };
        Ok((
            time("from", self.from.as_deref())?,
            time("to", self.to.as_deref())?,
        ))
    }
}

/// The header record of an export with these column names.
pub fn header(columns: &[&str]) -> String {
    record(&columns.iter().map(|c| c.to_string()).collect::<Vec<_>>())
}

/// One field as RFC 4180 writes it: quoted (its quotes doubled) when it holds a comma, a
/// quote or a line break. Text a person typed that starts like a spreadsheet formula (`=`,
/// `+`, `-`, `@`) gets a leading `'`, so opening the file runs nothing.
pub fn text_field(raw: &str) -> String {
    let guarded = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_string()
    };
    quoted(&guarded)
}

/// A field the shop wrote itself (an id, a status, an amount): quoted only if it must be.
pub fn plain_field(raw: &str) -> String {
    quoted(raw)
}

fn quoted(raw: &str) -> String {
    if raw.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", raw.replace('"', "\"\""))
    } else {
        raw.to_string()
    }
}

/// One CSV record from its fields, with the CRLF RFC 4180 ends records with.
pub fn record(fields: &[String]) -> String {
    let mut line = fields.join(",");
    line.push_str("\r\n");
    line
}

/// A page of an export: its records, and where the next page starts (`None`: the last).
pub type Page<C> = (String, Option<C>);

/// The answer of an export named `filename`: `header` (a record), then each page
/// `next_page(cursor)` reads, from `start`, until one says it is the last. A page that fails
/// ends the body early (the client sees it cut short) and is logged.
pub fn csv_response<C, F, Fut>(
    filename: &str,
    header: String,
    start: C,
    mut next_page: F,
) -> Response
where
    C: Send + 'static,
    F: FnMut(C) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page<C>, crate::db::StoreError>> + Send,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        if sender.send(Ok(Bytes::from(header))).await.is_err() {
            return;
        }
        let mut cursor = start;
        loop {
            match next_page(cursor).await {
                Ok((records, next)) => {
                    if sender.send(Ok(Bytes::from(records))).await.is_err() {
                        return;
                    }
                    match next {
                        Some(next) => cursor = next,
                        None => return,
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "an export failed part way; its body was cut short");
                    let _ = sender
                        .send(Err(std::io::Error::other(err.to_string())))
                        .await;
                    return;
                }
            }
        }
    });
    let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says_and_formulas_are_defused() {
        assert_eq!(text_field("Ada"), "Ada");
        assert_eq!(text_field("Lovelace, Ada"), "\"Lovelace, Ada\"");
        assert_eq!(text_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text_field("two\r\nlines"), "\"two\r\nlines\"");
        assert_eq!(
            text_field("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(text_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(plain_field("-5.00"), "-5.00");
        assert_eq!(record(&["a".into(), "b".into()]), "a,b\r\n");
    }
}
