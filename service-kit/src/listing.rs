//! A page of a list as an answer: the bare JSON array the seed's clients expect, with the
//! list's total in `X-Total-Count` and the next page's address in `Link` (RFC 8288).

use crate::domain::Page;
use axum::Json;
use axum::http::{HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The header with the number of rows the whole list has.
pub const TOTAL_COUNT_HEADER: &str = "x-total-count";

/// One page of a list of `total` rows, asked for at `uri`.
#[derive(Debug)]
pub struct Listed<T> {
    /// The page's rows.
    pub items: Vec<T>,
    /// How many rows the whole list has.
    pub total: i64,
    /// Which page this is.
    pub page: Page,
    /// Where it was asked for: the next page's link keeps its path and query.
    pub uri: Uri,
}

impl<T> Listed<T> {
    /// Page `page` of a list asked for at `uri`: its rows and the list's total, as a store
    /// function returns them.
    pub fn new((items, total): (Vec<T>, i64), page: Page, uri: Uri) -> Self {
        Listed {
            items,
            total,
            page,
            uri,
        }
    }

    /// The same page with each row turned into `U` (a record into its DTO).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            page: self.page,
            uri: self.uri,
        }
    }

    /// `<path?...&offset=N>; rel="next"` when rows are left after this page.
    fn next_link(&self) -> Option<String> {
        let shown = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
        let next = self.page.offset().saturating_add(shown);
        if shown == 0 || i64::from(next) >= self.total {
            return None;
        }
        let mut query: Vec<&str> = self
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty() && !pair.starts_with("offset="))
            .collect();
        let offset = format!("offset={next}");
        query.push(&offset);
        Some(format!(
            "<{}?{}>; rel=\"next\"",
            self.uri.path(),
            query.join("&")
        ))
    }
}

impl<T: Serialize> IntoResponse for Listed<T> {
    fn into_response(self) -> Response {
        let link = self.next_link();
        let mut response = Json(&self.items).into_response();
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static(TOTAL_COUNT_HEADER),
            HeaderValue::from(self.total),
        );
        if let Some(value) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(axum::http::header::LINK, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(uri: &str, rows: usize, offset: u32, total: i64) -> Listed<u8> {
        Listed {
            items: vec![0; rows],
            total,
            page: Page {
                limit: Some(2),
                offset: Some(offset),
            },
            uri: uri.parse().unwrap(),
        }
    }

    #[test]
    fn the_next_link_keeps_the_query_and_moves_the_offset() {
        let page = listed("/products?q=lamp&limit=2&offset=2", 2, 2, 7);
        assert_eq!(
            page.next_link().as_deref(),
            Some("</products?q=lamp&limit=2&offset=4>; rel=\"next\"")
        );
        assert_eq!(
            listed("/orders", 2, 0, 3).next_link().as_deref(),
            Some("</orders?offset=2>; rel=\"next\"")
        );
        assert_eq!(
            listed("/orders?limit=2", 1, 2, 3).next_link(),
            None,
            "last page"
        );
        assert_eq!(
            listed("/orders", 0, 50, 3).next_link(),
            None,
            "past the end"
        );
    }

    #[test]
    fn the_answer_is_the_bare_array_with_its_total() {
        let response = listed("/orders?limit=2", 2, 0, 5).into_response();
        assert_eq!(response.headers()[TOTAL_COUNT_HEADER], "5");
        assert!(response.headers().contains_key(axum::http::header::LINK));
    }
}
