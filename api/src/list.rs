//! The list convention (CONTRACT 2): `?limit=` (default 50, max 500), an opaque `?cursor=`,
//! and `{"items": [...], "next_cursor": "..." | null}`.

use serde::Serialize;

use crate::error::ApiError;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 500;

/// A page request: how many, from where.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Items wanted.
    pub limit: u64,
    /// Items to skip.
    pub offset: u64,
}

impl Page {
    /// Parses `limit` and `cursor`.
    ///
    /// # Errors
    /// 422 for `limit=0` or a cursor this server did not make.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 {
            return Err(ApiError::invalid("limit must be between 1 and 500"));
        }
        let offset = match cursor.filter(|c| !c.is_empty()) {
            None => 0,
            Some(c) => decode(c).ok_or_else(|| ApiError::invalid("invalid cursor"))?,
        };
        Ok(Self {
            limit: u64::from(limit.min(MAX_LIMIT)),
            offset,
        })
    }

    /// The page of `items`, which holds up to `limit + 1` items from `offset` (the extra one
    /// tells whether there is a next page).
    pub fn finish<T: Serialize>(self, mut items: Vec<T>) -> Listed<T> {
        let more = items.len() as u64 > self.limit;
        items.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        Listed {
            next_cursor: more.then(|| encode(self.offset + self.limit)),
            items,
        }
    }
}

/// A list response.
#[derive(Debug, Serialize)]
pub struct Listed<T> {
    /// This page.
    pub items: Vec<T>,
    /// The cursor of the next page, `null` on the last.
    pub next_cursor: Option<String>,
}

fn encode(offset: u64) -> String {
    format!("c1{offset:x}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode(cursor: &str) -> Option<u64> {
    if cursor.len() % 2 != 0 || cursor.len() > 64 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    u64::from_str_radix(text.strip_prefix("c1")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode(&encode(1234)), Some(1234));
        assert!(Page::parse(None, Some("zz")).is_err());
        assert!(Page::parse(Some(0), None).is_err());
        assert_eq!(Page::parse(Some(9999), None).unwrap().limit, 500);
        let page = Page::parse(Some(2), None).unwrap().finish(vec![1, 2, 3]);
        assert_eq!(page.items, vec![1, 2]);
        let next = Page::parse(Some(2), page.next_cursor.as_deref()).unwrap();
        assert_eq!(next.offset, 2);
    }
}
