//! Bounds on what one audit event records: every client-sent or client-influenced string is
//! cut to a cap, on a char boundary, with a marker that keeps the original length.
//!
//! A 3 MiB JSON-RPC `id` is recorded as its first [`NAME_CAP`] bytes followed by
//! `…[truncated, 3146727 bytes]`; so are methods, tool, prompt, resource and task names, client
//! info, principal fields and replica ids. Error messages and refusal reasons are cut at
//! [`REASON_CAP`], trace context at [`TRACE_CAP`]. Captured arguments and results are bounded by
//! [`Capture::max_bytes`](super::Capture::max_bytes). So one event's line stays within a few
//! KiB plus what capture adds, whatever the client sent; the JSON-lines sink leaves captures
//! out of a line over its per-event budget (64 KiB).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::{Serialize, Serializer};

/// Cap for names and ids (method, tool name, `jsonrpc.request.id`, client info, principal).
pub(crate) const NAME_CAP: usize = 256;

/// Cap for error messages and refusal reasons.
pub(crate) const REASON_CAP: usize = 1024;

/// Cap for `traceparent` / `tracestate`.
pub(crate) const TRACE_CAP: usize = 512;

/// A string as recorded: itself when within `cap` bytes, else its first bytes (cut on a char
/// boundary) followed by `…[truncated, N bytes]`, N being the original length.
pub(crate) fn cap(value: &str, cap: usize) -> Cow<'_, str> {
    if value.len() <= cap {
        return Cow::Borrowed(value);
    }
    let mut end = cap;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 32);
    out.push_str(&value[..end]);
    let _ = write!(out, "…[truncated, {} bytes]", value.len());
    Cow::Owned(out)
}

/// A `Display` value capped at `cap` bytes: formatted into a buffer that stops growing at
/// the cap (the rest is only counted), so a huge value is never copied whole.
pub(crate) fn cap_display(value: &impl fmt::Display, cap_bytes: usize) -> String {
    let mut w = Bounded {
        out: String::new(),
        cap: cap_bytes,
        len: 0,
    };
    let _ = write!(w, "{value}");
    if w.len > cap_bytes {
        let _ = write!(w.out, "…[truncated, {} bytes]", w.len);
    }
    w.out
}

struct Bounded {
    out: String,
    cap: usize,
    len: usize,
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.len += s.len();
        let room = self.cap.saturating_sub(self.out.len());
        if room >= s.len() {
            self.out.push_str(s);
        } else if room > 0 {
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.out.push_str(&s[..end]);
            // Nothing more fits, even a later short piece: keep the cut clean.
            self.cap = self.out.len();
        }
        Ok(())
    }
}

/// Serializes a string capped at `N` bytes.
pub(crate) struct Capped<'a, const N: usize>(pub(crate) &'a str);

impl<const N: usize> Serialize for Capped<'_, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&cap(self.0, N))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_untouched() {
        assert!(matches!(cap("deploy", NAME_CAP), Cow::Borrowed("deploy")));
        assert_eq!(cap_display(&42, NAME_CAP), "42");
    }

    #[test]
    fn long_values_keep_a_prefix_and_their_length() {
        let long = "x".repeat(3_146_727);
        let capped = cap(&long, NAME_CAP);
        assert_eq!(
            capped,
            format!("{}…[truncated, 3146727 bytes]", "x".repeat(NAME_CAP))
        );
        assert_eq!(cap_display(&long, NAME_CAP), capped);
    }

    #[test]
    fn cuts_on_a_char_boundary() {
        let s = "é".repeat(200); // 400 bytes, 2 per char
        let capped = cap(&s, 255);
        assert!(capped.starts_with(&"é".repeat(127)));
        assert!(capped.ends_with("…[truncated, 400 bytes]"));
        let shown = cap_display(&s, 255);
        assert_eq!(shown, capped);
    }
}
