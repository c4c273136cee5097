//! Incremental Server-Sent Events reading (WHATWG HTML "event stream interpretation",
//! SPEC R16, R19, R20), for bytes that arrive in chunks of any size.
//!
//! One reader, [`SseScanner`], splits the stream into lines and events: it is the only code in
//! the crate that finds SSE line ends and event boundaries. It keeps a few bytes of state and
//! retains no payload, and answers "is the stream at an event boundary right now?"
//! ([`SseScanner::at_event_boundary`]) and "has the client been given an event id to resume
//! from?" ([`SseScanner::has_last_event_id`]). The SSE layer feeds it every frame so that it
//! only writes its own comments and `retry:` lines between events.
//!
//! [`SseParser`] is that same scanner plus event assembly: it also hands out the events
//! themselves ([`SseEvent`]: `id`, `event`, `data`, `retry`) and comment lines
//! ([`SseParser::feed`]), or the blocks of the stream with the offset where each one ends
//! ([`SseParser::feed_blocks`], for a filter that forwards the stream's own `Bytes` and
//! rewrites only some events). A line that lies inside one chunk is handed out as a [`Bytes`]
//! slice of that chunk (a reference count, not a copy); only lines split across chunks and
//! events with several `data` lines are copied. What it retains is bounded by
//! [`SseParser::with_max_event_bytes`]: anything past the cap is skipped and the event is
//! marked [`truncated`](SseEvent::truncated), so a server that never ends a line cannot make
//! the parser grow.
//!
//! Both accept LF, CR and CRLF line ends (also a CR at the end of one chunk and its LF at the
//! start of the next), a leading UTF-8 BOM (also split across chunks), `field:value` with and
//! without the space after the colon, a field name with no colon at all (`data` alone is an
//! empty data line), multi-line data, and empty data (the priming event of R19). An `id` whose
//! value contains NUL is ignored, as the standard says.
//!
//! ```
//! use bytes::Bytes;
//! use mcp_edge::protocol::sse::{SseItem, SseParser, SseScanner};
//!
//! let mut parser = SseParser::new();
//! let mut scanner = SseScanner::new();
//! let mut events = Vec::new();
//! for chunk in [&b"id: 7\r\nretry: 3000\r\ndata:\r\n\r\nevent: message\ndata: {\"jsonrpc\""[..], b":\"2.0\"}\n\n"] {
//!     let chunk = Bytes::copy_from_slice(chunk);
//!     scanner.feed(&chunk);
//!     for item in parser.feed(&chunk) {
//!         if let SseItem::Event(event) = item {
//!             events.push(event);
//!         }
//!     }
//! }
//! assert!(scanner.at_event_boundary() && scanner.has_last_event_id());
//! // The priming event: an id, a retry, and empty data.
//! assert_eq!(events[0].id.as_deref(), Some(&b"7"[..]));
//! assert_eq!(events[0].retry, Some(3000));
//! assert_eq!(events[0].data.as_deref(), Some(&b""[..]));
//! // A JSON-RPC message split across two chunks.
//! assert_eq!(events[1].event.as_deref(), Some(&b"message"[..]));
//! assert_eq!(events[1].data_str(), Some(r#"{"jsonrpc":"2.0"}"#));
//! ```

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The UTF-8 byte order mark an event stream may start with (it is skipped, once, at the
/// very start of the stream only).
pub const UTF8_BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// Default cap on what [`SseParser`] retains for one line and for one event's data: 1 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// The smallest cap [`SseParser::with_max_event_bytes`] accepts (so field names always fit).
pub const MIN_MAX_EVENT_BYTES: usize = 16;

/// Where the stream start stands with respect to the optional BOM.
const BOM_DONE: u8 = u8::MAX;

/// Finds the first CR or LF (SIMD through `memchr`, already in the tree via serde_json).
#[inline]
fn find_eol(bytes: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', b'\r', bytes)
}

/// Advances the stream-start BOM matcher over `chunk` from `*pos`.
///
/// Returns the number of bytes that looked like a BOM start but turned out not to be one
/// (they are ordinary line content), or 0.
#[inline]
fn skip_bom(state: &mut u8, chunk: &[u8], pos: &mut usize) -> usize {
    while *state < 3 {
        let Some(&b) = chunk.get(*pos) else {
            return 0;
        };
        if b == UTF8_BOM[*state as usize] {
            *state += 1;
            *pos += 1;
        } else {
            let matched = *state as usize;
            *state = BOM_DONE;
            return matched;
        }
    }
    *state = BOM_DONE;
    0
}

// ---------------------------------------------------------------------------------------------
// SseScanner: the one line and event splitter
// ---------------------------------------------------------------------------------------------

/// How far the scanner has read into the current line (only the start of a line matters:
/// whether it is an `id` field and whether its value is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// At the start of a line: nothing of it read yet.
    Start,
    /// Read `i`.
    I,
    /// Read `id`.
    Id,
    /// Read `id:`.
    IdColon,
    /// Read `id: `.
    IdColonSpace,
    /// In the non-empty value of an `id` line, no NUL so far.
    IdValue,
    /// Somewhere in a line whose content does not matter (including an `id` with a NUL).
    Rest,
}

/// A piece of one line inside one chunk, as the scanner hands it to [`SseParser`].
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// The line content in the chunk (without its line end).
    start: usize,
    end: usize,
    /// The line ends here (its CR, LF or CRLF has been consumed).
    eol: bool,
    /// Bytes of a would-be BOM that turned out to be the first bytes of this line: content
    /// that precedes `start` but lies in no chunk (0 except once, at a malformed start).
    bom: u8,
    /// The whole line lies in this chunk and the scanner has not read it: the caller reads
    /// it and must then bring the scanner up to date ([`SseScanner::next_line_segment`]).
    whole: bool,
}

/// Splits an SSE byte stream into lines and events without retaining any of it: tracks event
/// boundaries and event ids.
///
/// A few bytes of state, no allocation, one pass over each chunk (vectorised through line
/// content). See the [module docs](self) for an example. [`SseParser`] is built on it.
///
/// "At an event boundary" means: at the very start of the stream, or right after a blank
/// line. Any other line (a field, or even a comment) opens a block that only a blank line
/// closes, so bytes written at a boundary can never become part of someone else's event.
#[derive(Debug, Clone)]
pub struct SseScanner {
    head: Head,
    bom: u8,
    /// The last line ended with a CR at the end of a chunk: an LF next belongs to it.
    after_cr: bool,
    in_block: bool,
    has_last_event_id: bool,
    saw_id: bool,
}

impl Default for SseScanner {
    fn default() -> Self {
        SseScanner::new()
    }
}

impl SseScanner {
    /// A scanner at the start of a stream.
    pub const fn new() -> Self {
        SseScanner {
            head: Head::Start,
            bom: 0,
            after_cr: false,
            in_block: false,
            has_last_event_id: false,
            saw_id: false,
        }
    }

    /// Scans the next chunk of the stream.
    #[inline]
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut pos = 0;
        while self.next_segment(chunk, &mut pos).is_some() {}
    }

    /// Reads on from `*pos` to the next line end or the end of the chunk, whichever comes
    /// first, and returns that piece of line; `None` once the chunk is consumed.
    ///
    /// A CRLF within the chunk is consumed whole, so after a line end `*pos` is where the next
    /// line starts (except when a chunk ends between the CR and the LF: the LF is then skipped
    /// at the start of the next chunk).
    #[inline]
    fn next_segment(&mut self, chunk: &[u8], pos: &mut usize) -> Option<Segment> {
        self.segment::<false>(chunk, pos)
    }

    /// [`next_segment`](Self::next_segment) for a caller that reads every line itself
    /// ([`SseParser`]): a line that lies whole in this chunk (it starts here, at
    /// `Head::Start`, and its line end is here too) is not read by the scanner, so its bytes
    /// are looked at once, not twice. The segment then says `whole`, and the caller must
    /// bring the scanner's state up to date before anything else reads it: `in_block` (false
    /// for a blank line, true for any other) and, for an `id` line, what
    /// [`end_line`](Self::end_line) would have done with it. Everything else (line ends, a
    /// CR at the end of the chunk, the BOM) is handled here as for any segment.
    #[inline]
    fn next_line_segment(&mut self, chunk: &[u8], pos: &mut usize) -> Option<Segment> {
        self.segment::<true>(chunk, pos)
    }

    /// Both of the above: `CALLER_READS` selects [`next_line_segment`](Self::next_line_segment).
    #[inline(always)]
    fn segment<const CALLER_READS: bool>(
        &mut self,
        chunk: &[u8],
        pos: &mut usize,
    ) -> Option<Segment> {
        let len = chunk.len();
        let mut bom = 0;
        loop {
            if *pos >= len {
                return None;
            }
            if self.bom != BOM_DONE {
                let not_bom = skip_bom(&mut self.bom, chunk, pos);
                if not_bom > 0 {
                    // Bytes of a would-be BOM are the start of a (malformed) line. A mismatch
                    // is found at a byte of this chunk, so the segment below is not empty.
                    self.in_block = true;
                    self.head = Head::Rest;
                    bom = not_bom as u8;
                }
                if self.bom != BOM_DONE || *pos >= len {
                    return None;
                }
            }
            if self.after_cr {
                self.after_cr = false;
                if chunk[*pos] == b'\n' {
                    *pos += 1;
                    continue;
                }
            }
            break;
        }
        let start = *pos;
        // A line end right away (a blank line, every event has one) needs no search.
        let first = chunk[start];
        let found = if first == b'\n' || first == b'\r' {
            Some(0)
        } else {
            find_eol(&chunk[start + 1..]).map(|k| k + 1)
        };
        let Some(k) = found else {
            self.read(&chunk[start..]);
            *pos = len;
            return Some(Segment {
                start,
                end: len,
                eol: false,
                bom,
                whole: false,
            });
        };
        let end = start + k;
        *pos = end + 1;
        if chunk[end] == b'\r' {
            match chunk.get(end + 1) {
                Some(b'\n') => *pos += 1,
                Some(_) => {}
                None => self.after_cr = true,
            }
        }
        // Bytes of a failed BOM leave the head at `Rest`: such a line is never `whole`.
        if self.head == Head::Start {
            if CALLER_READS {
                return Some(Segment {
                    start,
                    end,
                    eol: true,
                    bom,
                    whole: true,
                });
            }
            // A whole line: only its first byte matters, unless it may be an `id`.
            if k == 0 {
                self.in_block = false;
            } else if first == b'i' {
                self.read(&chunk[start..end]);
                self.end_line();
            } else {
                self.in_block = true;
            }
        } else {
            self.read(&chunk[start..end]);
            self.end_line();
        }
        Some(Segment {
            start,
            end,
            eol: true,
            bom,
            whole: false,
        })
    }

    /// Reads line content (no line end in it).
    #[inline]
    fn read(&mut self, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            self.head = match (self.head, b) {
                (Head::Rest, _) => return,
                (Head::Start, b'i') => {
                    self.in_block = true;
                    Head::I
                }
                (Head::Start, _) => {
                    self.in_block = true;
                    Head::Rest
                }
                (Head::I, b'd') => Head::Id,
                (Head::Id, b':') => Head::IdColon,
                (Head::IdColon, b' ') => Head::IdColonSpace,
                (Head::IdColon | Head::IdColonSpace | Head::IdValue, _) => {
                    // An id whose value contains NUL is ignored.
                    if memchr::memchr(0, &bytes[i..]).is_some() {
                        Head::Rest
                    } else {
                        Head::IdValue
                    }
                }
                _ => Head::Rest,
            };
            if matches!(self.head, Head::Rest | Head::IdValue) {
                return;
            }
        }
    }

    /// A line ended.
    #[inline]
    fn end_line(&mut self) {
        match self.head {
            // A blank line: the event (if any) is dispatched.
            Head::Start => self.in_block = false,
            // `id` with an empty value clears the client's last event id.
            Head::Id | Head::IdColon | Head::IdColonSpace => self.has_last_event_id = false,
            Head::IdValue => {
                self.has_last_event_id = true;
                self.saw_id = true;
            }
            Head::I | Head::Rest => {}
        }
        self.head = Head::Start;
    }

    /// True at the start of the stream and right after a blank line: bytes written now start
    /// a new block and cannot end up inside an event.
    ///
    /// Cheap: a couple of field reads.
    #[inline]
    pub fn at_event_boundary(&self) -> bool {
        !self.in_block && self.head == Head::Start && (self.bom == 0 || self.bom == BOM_DONE)
    }

    /// True when nothing at all has been fed yet (not even part of a BOM).
    #[inline]
    pub fn at_stream_start(&self) -> bool {
        self.bom == 0
    }

    /// True when the events so far leave the client with a non-empty last event id, i.e. the
    /// client could resume this stream with `Last-Event-ID` (R18, R20).
    #[inline]
    pub fn has_last_event_id(&self) -> bool {
        self.has_last_event_id
    }

    /// True when any event so far carried a non-empty `id`.
    #[inline]
    pub fn saw_id(&self) -> bool {
        self.saw_id
    }
}

// ---------------------------------------------------------------------------------------------
// SseEventCounter: the scanner plus a count of events
// ---------------------------------------------------------------------------------------------

/// What the counter knows of the current line (only its start decides whether the line is a
/// field that makes its block an event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineHead {
    /// The field name so far (`len` bytes of `name`; no `:` yet).
    Name { name: [u8; 5], len: u8 },
    /// Right after `retry:`: one space may follow before the value.
    RetryColon,
    /// A `retry` value so far, all digits and within a `u64` (a line whose value is not is
    /// `Decided(false)`); `any` once a digit of it has been read.
    Retry { ms: u64, any: bool },
    /// An `id` value so far, and whether a NUL was seen in it.
    Id { nul: bool },
    /// The line is decided: whether it makes its block an event.
    Decided(bool),
}

impl LineHead {
    const START: LineHead = LineHead::Name {
        name: [0; 5],
        len: 0,
    };

    /// How the value of a line with field `name` starts (`colon`: the name ended with one).
    fn field(name: &[u8], colon: bool) -> LineHead {
        match name {
            b"data" | b"event" => LineHead::Decided(true),
            b"id" => LineHead::Id { nul: false },
            b"retry" if colon => LineHead::RetryColon,
            _ => LineHead::Decided(false),
        }
    }

    /// One more byte of a `retry` value.
    fn retry_digit(ms: u64, b: u8) -> LineHead {
        b.is_ascii_digit()
            .then(|| ms.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
            .map_or(LineHead::Decided(false), |ms| LineHead::Retry {
                ms,
                any: true,
            })
    }

    /// The line has ended: does it make its block an event?
    fn sets_field(self) -> bool {
        match self {
            // A field name with no colon: its value is empty.
            LineHead::Name { name, len } => matches!(
                LineHead::field(&name[..usize::from(len)], false),
                LineHead::Decided(true) | LineHead::Id { .. }
            ),
            LineHead::RetryColon => false,
            LineHead::Retry { any, .. } => any,
            LineHead::Id { nul } => !nul,
            LineHead::Decided(sets) => sets,
        }
    }
}

/// Counts the events of an SSE stream without keeping any of them: the number of
/// [`SseItem::Event`]s [`SseParser`] would hand out (blocks ended by a blank line that carry a
/// `data`, `event`, NUL-free `id` or all-digit `retry` field), in a few bytes of state.
///
/// For a reader that only needs how many events passed (an audit record of a long-lived GET
/// stream): no line is copied, no payload retained.
///
/// ```
/// use mcp_edge::protocol::sse::SseEventCounter;
///
/// let mut counter = SseEventCounter::new();
/// counter.feed(b": keep-alive\n\nid: 1\nda");
/// counter.feed(b"ta: {}\n\nretry: x\n\n");
/// assert_eq!(counter.events(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct SseEventCounter {
    scanner: SseScanner,
    line: LineHead,
    /// The current block has a field that makes it an event.
    fields: bool,
    events: u64,
}

impl Default for SseEventCounter {
    fn default() -> Self {
        SseEventCounter::new()
    }
}

impl SseEventCounter {
    /// A counter at the start of a stream.
    pub const fn new() -> Self {
        SseEventCounter {
            scanner: SseScanner::new(),
            line: LineHead::START,
            fields: false,
            events: 0,
        }
    }

    /// The events completed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Reads the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut pos = 0;
        while let Some(segment) = self.scanner.next_segment(chunk, &mut pos) {
            let blank =
                segment.start == segment.end && segment.bom == 0 && self.line == LineHead::START;
            if segment.bom > 0 {
                // The bytes of a failed BOM start this line: no field name starts so.
                self.line = LineHead::Decided(false);
            }
            self.read(&chunk[segment.start..segment.end]);
            if !segment.eol {
                continue;
            }
            if blank {
                self.events += u64::from(self.fields);
                self.fields = false;
            } else {
                self.fields |= self.line.sets_field();
            }
            self.line = LineHead::START;
        }
    }

    /// Reads line content (no line end in it).
    fn read(&mut self, mut bytes: &[u8]) {
        while let Some((&b, tail)) = bytes.split_first() {
            self.line = match self.line {
                LineHead::Decided(_) => return,
                LineHead::Id { nul } => {
                    let nul = nul || memchr::memchr(0, bytes).is_some();
                    self.line = LineHead::Id { nul };
                    return;
                }
                LineHead::RetryColon if b == b' ' => LineHead::Retry { ms: 0, any: false },
                LineHead::RetryColon => LineHead::retry_digit(0, b),
                LineHead::Retry { ms, .. } => LineHead::retry_digit(ms, b),
                LineHead::Name { name, len } if b == b':' => {
                    LineHead::field(&name[..usize::from(len)], true)
                }
                LineHead::Name { mut name, len } if usize::from(len) < name.len() => {
                    name[usize::from(len)] = b;
                    LineHead::Name { name, len: len + 1 }
                }
                LineHead::Name { .. } => LineHead::Decided(false),
            };
            bytes = tail;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SseParser: the scanner plus event assembly
// ---------------------------------------------------------------------------------------------

/// One event of the stream: the fields of one block of lines ended by a blank line.
///
/// Unlike a browser `EventSource`, the parser also reports blocks that carry no `data` (for
/// example `retry: 3000` alone, or an `id` alone): their `id` and `retry` matter for
/// resumption. [`SseEvent::dispatches`] tells whether an `EventSource` would fire it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SseEvent {
    /// The event's own `id` field, if it has one (the last one, if several). An `id` whose
    /// value contains NUL is ignored, as the standard says. Use [`SseParser::last_event_id`]
    /// for the id a client would send back in `Last-Event-ID`.
    pub id: Option<Bytes>,
    /// The `event` field (the event type), if any.
    pub event: Option<Bytes>,
    /// The `data` lines joined with `\n`; `Some` and empty for `data:` with no value (a
    /// priming event, R19); `None` when the block had no `data` line at all.
    pub data: Option<Bytes>,
    /// The `retry` field, when its value was all ASCII digits and fits in a `u64`.
    pub retry: Option<u64>,
    /// True when a line of this event was longer than the parser's cap, or its data was:
    /// the retained values are then prefixes.
    pub truncated: bool,
}

impl SseEvent {
    /// The data as UTF-8, if there is data and it is valid UTF-8.
    pub fn data_str(&self) -> Option<&str> {
        self.data
            .as_deref()
            .and_then(|d| std::str::from_utf8(d).ok())
    }

    /// True when a browser `EventSource` would dispatch this event (it has a `data` line).
    pub fn dispatches(&self) -> bool {
        self.data.is_some()
    }

    /// The event written out: its `id`, `event`, `retry` and `data` lines in that order
    /// (`data` split at each `\n`, `field: value` with one space, LF line ends), then the
    /// blank line that ends it.
    ///
    /// Reading the result back gives the same event (comments and unknown fields of the
    /// original block are not kept: clients ignore them).
    pub fn to_bytes(&self) -> Bytes {
        let data_len = self.data.as_ref().map_or(0, |d| d.len() + 16);
        let mut out = BytesMut::with_capacity(data_len + 64);
        let mut line = |name: &[u8], value: &[u8]| {
            out.put_slice(name);
            out.put_slice(b": ");
            out.put_slice(value);
            out.put_u8(b'\n');
        };
        if let Some(id) = &self.id {
            line(b"id", id);
        }
        if let Some(event) = &self.event {
            line(b"event", event);
        }
        if let Some(retry) = self.retry {
            line(b"retry", retry.to_string().as_bytes());
        }
        if let Some(data) = &self.data {
            for value in data.split(|&b| b == b'\n') {
                line(b"data", value);
            }
        }
        out.put_u8(b'\n');
        out.freeze()
    }
}

/// What [`SseParser::feed`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseItem {
    /// A complete event (its blank line has been read).
    Event(SseEvent),
    /// A comment line: the bytes after the leading `:` (a keep-alive is usually empty).
    Comment(Bytes),
}

/// One block of the stream ended by a blank line, as [`SseParser::feed_blocks`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseBlock {
    /// Where the block ends in the chunk just fed: the offset right after its blank line.
    /// The block's bytes are those since the previous block's end (in this chunk or an
    /// earlier one), up to here.
    pub end: usize,
    /// The event, when the block had fields (`None` for a block of comments only).
    pub event: Option<SseEvent>,
}

/// What one step of the parser found.
enum Step {
    /// A comment line.
    Comment(Bytes),
    /// A blank line: the end of a block. Its event, if it had fields, is still in the parser:
    /// the caller takes it ([`SseParser::take_event`]) or drops it
    /// ([`SseParser::end_block`]), so that the event is built once, where it goes.
    Boundary,
}

/// The data of the event being assembled.
#[derive(Debug, Clone, Default)]
enum Data {
    #[default]
    None,
    /// One data line: a slice of a chunk, or of a line buffer.
    One(Bytes),
    /// Several lines joined, copied.
    Many(BytesMut),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::None => 0,
            Data::One(b) => b.len(),
            Data::Many(b) => b.len(),
        }
    }
}

/// Assembles SSE events from chunks: an [`SseScanner`] plus what its lines say; see the
/// [module docs](self).
///
/// Memory: at most about four times the cap (a partial line, the data, `id` and `event`),
/// whatever the input, plus the chunks that zero-copy slices keep alive.
#[derive(Clone)]
pub struct SseParser {
    scanner: SseScanner,
    max: usize,
    /// The current line, when it started in an earlier chunk (first `max` bytes only).
    partial: BytesMut,
    /// The logical length of the current line so far (may exceed what is retained).
    partial_len: usize,
    /// A NUL lies in the part of the current line past the cap (not retained): an `id` line
    /// is then ignored as a whole, as the scanner judges it.
    partial_nul: bool,
    fields: bool,
    id: Option<Bytes>,
    event: Option<Bytes>,
    data: Data,
    data_full: bool,
    retry: Option<u64>,
    truncated: bool,
    last_event_id: Bytes,
}

impl fmt::Debug for SseParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseParser")
            .field("max_event_bytes", &self.max)
            .field("at_event_boundary", &self.at_event_boundary())
            .field("partial_line_len", &self.partial_len)
            .field("last_event_id", &self.last_event_id)
            .finish_non_exhaustive()
    }
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new()
    }
}

impl SseParser {
    /// A parser with the default cap ([`DEFAULT_MAX_EVENT_BYTES`]).
    pub fn new() -> Self {
        SseParser::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that retains at most `max` bytes of any one line and of any one event's
    /// data (at least [`MIN_MAX_EVENT_BYTES`]; `usize::MAX` for no cap, when the caller
    /// bounds what it feeds).
    ///
    /// Past the cap, the rest of the line (or of the event's data) is skipped, not buffered,
    /// and the event is reported with [`truncated`](SseEvent::truncated) set and its values
    /// cut to their first bytes. The result does not depend on how the input was chunked.
    pub fn with_max_event_bytes(max: usize) -> Self {
        SseParser {
            scanner: SseScanner::new(),
            max: max.max(MIN_MAX_EVENT_BYTES),
            partial: BytesMut::new(),
            partial_len: 0,
            partial_nul: false,
            fields: false,
            id: None,
            event: None,
            data: Data::None,
            data_full: false,
            retry: None,
            truncated: false,
            last_event_id: Bytes::new(),
        }
    }

    /// Parses the next chunk; the returned iterator yields the events and comments completed
    /// by it.
    ///
    /// The whole chunk is consumed even if the iterator is dropped early (the items not
    /// taken are then lost, the parser's state is not).
    pub fn feed<'a>(&'a mut self, chunk: &'a Bytes) -> Feed<'a> {
        Feed(Cursor::new(self, chunk))
    }

    /// Parses the next chunk; the returned iterator yields one [`SseBlock`] per blank line
    /// in it: where the block ends in `chunk`, and its event. Comments are skipped.
    ///
    /// For a filter that forwards the stream's own bytes: everything up to a block's `end`
    /// belongs to finished blocks, so `chunk.slice(..end)` can go on as it is (zero-copy) or
    /// be replaced by a rewritten event. The whole chunk is consumed even if the iterator is
    /// dropped early.
    pub fn feed_blocks<'a>(&'a mut self, chunk: &'a Bytes) -> Blocks<'a> {
        Blocks(Cursor::new(self, chunk))
    }

    /// The end of the stream: the event of an unfinished last block (its partial last line
    /// included), as if a blank line had ended it; `None` when the stream ended at a
    /// boundary or the block had no fields.
    ///
    /// A client discards such an event; a filter that must not let any event through
    /// unexamined reads it here. The parser is then at the start of a new block.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.partial_len > 0 {
            let (len, nul, line) = self.take_partial();
            // A comment needs no answer here: it ends nothing.
            let _ = self.line::<false>(&line, 0, line.len(), len, nul);
        }
        self.scanner.head = Head::Start;
        self.scanner.in_block = false;
        self.take_block()
    }

    /// True at the start of the stream and right after a blank line.
    #[inline]
    pub fn at_event_boundary(&self) -> bool {
        self.scanner.at_event_boundary()
    }

    /// The id a client would now send as `Last-Event-ID` (empty when none): the last `id`
    /// field seen, which stays in force for later events that carry none.
    pub fn last_event_id(&self) -> &Bytes {
        &self.last_event_id
    }

    /// The scanner underneath (boundaries and ids, as [`SseScanner`] reports them).
    pub fn scanner(&self) -> &SseScanner {
        &self.scanner
    }

    /// Appends line content that continues past the current chunk, keeping the first `max`.
    fn append_partial(&mut self, bytes: &[u8]) {
        let room = self.max.saturating_sub(self.partial.len());
        let (kept, dropped) = bytes.split_at(bytes.len().min(room));
        self.partial.extend_from_slice(kept);
        self.partial_len += bytes.len();
        if !self.partial_nul && !dropped.is_empty() {
            self.partial_nul = memchr::memchr(0, dropped).is_some();
        }
    }

    /// The current line is complete (from the line buffer): its length, whether a NUL lies
    /// past the cap, and its retained bytes.
    fn take_partial(&mut self) -> (usize, bool, Bytes) {
        let len = std::mem::take(&mut self.partial_len);
        let nul = std::mem::take(&mut self.partial_nul);
        (len, nul, self.partial.split().freeze())
    }

    /// Runs until the chunk is consumed, or a comment or a blank line has been read.
    ///
    /// After [`Step::Boundary`] the block's event is still in the parser: the caller must
    /// take it or end the block before stepping again.
    #[inline]
    fn step(&mut self, chunk: &Bytes, pos: &mut usize) -> Option<Step> {
        while let Some(segment) = self.scanner.next_line_segment(chunk, pos) {
            let Segment {
                start,
                end,
                eol,
                bom,
                whole,
            } = segment;
            if whole {
                // The whole line lies in this chunk and only this parser reads it: in place,
                // where only the values that are kept become (zero-copy) slices of the chunk.
                debug_assert!(self.partial_len == 0 && bom == 0);
                let len = end - start;
                if len == 0 {
                    self.scanner.in_block = false;
                    return Some(Step::Boundary);
                }
                self.scanner.in_block = true;
                let cut = end.min(start.saturating_add(self.max));
                if let Some(step) = self.line::<true>(chunk, start, cut, len, false) {
                    return Some(step);
                }
                continue;
            }
            if bom > 0 {
                self.append_partial(&UTF8_BOM[..bom as usize]);
            }
            if !eol {
                self.append_partial(&chunk[start..end]);
                continue;
            }
            // A line split across chunks (the scanner has read it): from the line buffer.
            self.append_partial(&chunk[start..end]);
            let (len, nul, line) = self.take_partial();
            if let Some(step) = self.line::<false>(&line, 0, line.len(), len, nul) {
                return Some(step);
            }
        }
        None
    }

    /// Interprets one complete line: `src[start..end]` holds its first `max` bytes of `len`;
    /// `nul_past_cap` (from the line buffer; `WHOLE` lines are looked at here) says whether a
    /// NUL lies in the rest: an `id` line is then ignored.
    ///
    /// Reads the borrowed bytes; a value is sliced out of `src` (a reference count, never a
    /// copy) only when it is kept.
    ///
    /// `WHOLE`: the line is `src[start..start + len]` (all of it in `src`) and the scanner
    /// has not read it ([`SseScanner::next_line_segment`]): this brings the scanner's `id`
    /// state up to date as [`SseScanner::end_line`] would have. The caller has dealt with a
    /// blank line and with the scanner's `in_block`.
    #[inline]
    fn line<const WHOLE: bool>(
        &mut self,
        src: &Bytes,
        start: usize,
        end: usize,
        len: usize,
        nul_past_cap: bool,
    ) -> Option<Step> {
        if !WHOLE && len == 0 {
            return Some(Step::Boundary);
        }
        let line = &src[start..end];
        if line[0] == b':' {
            return Some(Step::Comment(src.slice(start + 1..end)));
        }
        let cut = len > line.len();
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let skip = usize::from(line.get(colon + 1) == Some(&b' '));
                (&line[..colon], start + colon + 1 + skip..end)
            }
            None => (line, end..end),
        };
        match name {
            b"data" => {
                self.fields = true;
                self.push_data(src, value, cut);
            }
            b"event" => {
                self.fields = true;
                self.truncated |= cut;
                self.event = Some(src.slice(value));
            }
            b"id" => {
                // An id containing NUL is ignored, as the standard says: anywhere in the
                // line, past the cap too, so that the parser and the scanner (which judges
                // the whole line) agree on the client's last event id.
                let past_cap = if WHOLE {
                    cut && memchr::memchr(0, &src[end..start + len]).is_some()
                } else {
                    nul_past_cap
                };
                let nul = past_cap || memchr::memchr(0, &src[value.clone()]).is_some();
                if WHOLE {
                    if value.is_empty() {
                        self.scanner.has_last_event_id = false;
                    } else if !nul {
                        self.scanner.has_last_event_id = true;
                        self.scanner.saw_id = true;
                    }
                }
                if !nul {
                    self.fields = true;
                    self.truncated |= cut;
                    let value = src.slice(value);
                    self.last_event_id = value.clone();
                    self.id = Some(value);
                }
            }
            b"retry" => {
                let digits = &src[value];
                // Only all-digit values count; one too large for u64 is ignored.
                if !cut
                    && !digits.is_empty()
                    && digits.iter().all(u8::is_ascii_digit)
                    && let Some(ms) = digits.iter().try_fold(0u64, |n, &d| {
                        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                    })
                {
                    self.fields = true;
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
        None
    }

    /// Consumes the rest of a chunk whose items nobody takes (a [`Feed`] or [`Blocks`]
    /// dropped early): the parser's state is as if they had been taken.
    fn skip_rest(&mut self, chunk: &Bytes, pos: &mut usize) {
        while let Some(step) = self.step(chunk, pos) {
            if let Step::Boundary = step {
                self.end_block();
            }
        }
    }

    /// Adds one `data` line (`src[range]`) to the event's data, within the cap; `cut` when
    /// the line itself was longer than the cap.
    fn push_data(&mut self, src: &Bytes, range: std::ops::Range<usize>, cut: bool) {
        if self.data_full {
            return;
        }
        if cut {
            // The rest of this line is gone: later data lines would not follow on from it.
            self.data_full = true;
            self.truncated = true;
        }
        let room = match self.data {
            Data::None => self.max,
            _ => self.max.saturating_sub(self.data.len() + 1),
        };
        let value = &src[range.clone()];
        if matches!(self.data, Data::None) {
            let take = value.len().min(room);
            if take < value.len() {
                self.data_full = true;
                self.truncated = true;
            }
            self.data = Data::One(src.slice(range.start..range.start + take));
            return;
        }
        if self.data.len() >= self.max {
            self.data_full = true;
            self.truncated = true;
            return;
        }
        let take = value.len().min(room);
        if take < value.len() {
            self.data_full = true;
            self.truncated = true;
        }
        let mut joined = match std::mem::take(&mut self.data) {
            Data::One(first) => {
                let mut buf = BytesMut::with_capacity(first.len() + 1 + take);
                buf.put_slice(&first);
                buf
            }
            Data::Many(buf) => buf,
            Data::None => BytesMut::new(),
        };
        joined.put_u8(b'\n');
        joined.put_slice(&value[..take]);
        self.data = Data::Many(joined);
    }

    /// The block ends: its event, when it had fields. The parser is then at the start of a
    /// new block.
    #[inline]
    fn take_block(&mut self) -> Option<SseEvent> {
        if self.fields {
            Some(self.take_event())
        } else {
            self.end_block();
            None
        }
    }

    /// The block ends, and its event (the block had fields) is taken.
    #[inline]
    fn take_event(&mut self) -> SseEvent {
        self.fields = false;
        self.data_full = false;
        SseEvent {
            id: self.id.take(),
            event: self.event.take(),
            data: match std::mem::take(&mut self.data) {
                Data::None => None,
                Data::One(b) => Some(b),
                Data::Many(b) => Some(b.freeze()),
            },
            retry: self.retry.take(),
            truncated: std::mem::take(&mut self.truncated),
        }
    }

    /// The block ends and its event, if any, is dropped.
    #[inline]
    fn end_block(&mut self) {
        if self.fields {
            drop(self.take_event());
        } else {
            // Nothing is kept for a block without fields: every value sets `fields`.
            debug_assert!(
                self.id.is_none()
                    && self.event.is_none()
                    && matches!(self.data, Data::None)
                    && self.retry.is_none()
                    && !self.truncated
                    && !self.data_full
            );
        }
    }
}

/// Where [`Feed`] and [`Blocks`] are in their chunk. Dropped early, it reads the rest of the
/// chunk so that the parser's state is right for the next one.
#[derive(Debug)]
struct Cursor<'a> {
    parser: &'a mut SseParser,
    chunk: &'a Bytes,
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn new(parser: &'a mut SseParser, chunk: &'a Bytes) -> Self {
        Cursor {
            parser,
            chunk,
            pos: 0,
        }
    }

    #[inline]
    fn step(&mut self) -> Option<Step> {
        self.parser.step(self.chunk, &mut self.pos)
    }
}

impl Drop for Cursor<'_> {
    #[inline]
    fn drop(&mut self) {
        // Nothing left when the iterator ran to its end (the usual case).
        if self.pos < self.chunk.len() {
            self.parser.skip_rest(self.chunk, &mut self.pos);
        }
    }
}

/// The items one chunk completes; see [`SseParser::feed`].
#[derive(Debug)]
pub struct Feed<'a>(Cursor<'a>);

/// The blocks one chunk completes; see [`SseParser::feed_blocks`].
#[derive(Debug)]
pub struct Blocks<'a>(Cursor<'a>);

impl Iterator for Feed<'_> {
    type Item = SseItem;

    #[inline]
    fn next(&mut self) -> Option<SseItem> {
        loop {
            match self.0.step()? {
                Step::Comment(text) => return Some(SseItem::Comment(text)),
                Step::Boundary if self.0.parser.fields => {
                    return Some(SseItem::Event(self.0.parser.take_event()));
                }
                Step::Boundary => self.0.parser.end_block(),
            }
        }
    }
}

impl Iterator for Blocks<'_> {
    type Item = SseBlock;

    #[inline]
    fn next(&mut self) -> Option<SseBlock> {
        // Comments are skipped: a block ends at a boundary.
        while let Step::Comment(_) = self.0.step()? {}
        Some(SseBlock {
            end: self.0.pos,
            event: self.0.parser.take_block(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_chunks(chunks: &[&[u8]], max: usize) -> (Vec<SseItem>, SseParser) {
        let mut parser = SseParser::with_max_event_bytes(max);
        let mut items = Vec::new();
        for chunk in chunks {
            items.extend(parser.feed(&Bytes::copy_from_slice(chunk)));
        }
        (items, parser)
    }

    #[test]
    fn event_counter_counts_what_the_parser_hands_out() {
        let streams: &[&[u8]] = &[
            b"data: x\n\n",
            b": keep-alive\n\n: more\n\n",
            b"id: 1\r\nevent: message\r\ndata: {}\r\n\r\n",
            b"id\n\nid:\n\nid: a\0b\n\nid: ok\n\n",
            b"retry: 3000\n\nretry:  5\n\nretry:5\n\nretry: x1\n\nretry\n\nretry:\n\n",
            b"retry: 99999999999999999999\n\nretry: 18446744073709551615\n\n",
            b"foo: bar\n\nfoo\ndata\n\ndatas: x\n\nevents: y\n\n",
            b"\xEF\xBB\xBFdata: bom\n\n",
            b"\xEFdata: not a bom\n\ndata: after\n\n",
            b"data: a\rdata: b\r\rdata: c\r\n\r\n:only a comment\n\n\n\ndata: no end",
        ];
        for stream in streams {
            let want = events(stream).len() as u64;
            for cut in 0..=stream.len() {
                for cut2 in cut..=stream.len() {
                    let mut counter = SseEventCounter::new();
                    counter.feed(&stream[..cut]);
                    counter.feed(&stream[cut..cut2]);
                    counter.feed(&stream[cut2..]);
                    assert_eq!(
                        counter.events(),
                        want,
                        "{:?} cut at {cut} and {cut2}",
                        String::from_utf8_lossy(stream)
                    );
                }
            }
        }
    }

    fn events(input: &[u8]) -> Vec<SseEvent> {
        parse_chunks(&[input], DEFAULT_MAX_EVENT_BYTES)
            .0
            .into_iter()
            .filter_map(|i| match i {
                SseItem::Event(e) => Some(e),
                SseItem::Comment(_) => None,
            })
            .collect()
    }

    fn ev(
        id: Option<&str>,
        event: Option<&str>,
        data: Option<&str>,
        retry: Option<u64>,
    ) -> SseEvent {
        SseEvent {
            id: id.map(|s| Bytes::copy_from_slice(s.as_bytes())),
            event: event.map(|s| Bytes::copy_from_slice(s.as_bytes())),
            data: data.map(|s| Bytes::copy_from_slice(s.as_bytes())),
            retry,
            truncated: false,
        }
    }

    /// Whether a scanner is at an event boundary after each chunk.
    fn boundaries(chunks: &[&[u8]]) -> Vec<bool> {
        let mut scanner = SseScanner::new();
        chunks
            .iter()
            .map(|chunk| {
                scanner.feed(chunk);
                scanner.at_event_boundary()
            })
            .collect()
    }

    /// An event of only data.
    fn data(data: &str) -> SseEvent {
        ev(None, None, Some(data), None)
    }

    #[test]
    fn every_line_ending_ends_lines() {
        for eol in ["\n", "\r", "\r\n"] {
            let input = format!("data: a{eol}data: b{eol}{eol}data:c{eol}{eol}");
            assert_eq!(
                events(input.as_bytes()),
                vec![data("a\nb"), data("c")],
                "line ending {eol:?}"
            );
        }
        // Mixed in one stream.
        assert_eq!(
            events(b"data: a\r\ndata: b\rdata: c\n\r\n"),
            vec![data("a\nb\nc")]
        );
    }

    #[test]
    fn cr_at_end_of_chunk_and_lf_at_start_of_next_is_one_line_end() {
        let (items, parser) = parse_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"], 64);
        assert_eq!(items, vec![SseItem::Event(data("a\nb"))]);
        assert!(parser.at_event_boundary());
        assert_eq!(
            boundaries(&[b"data: a\r", b"\n", b"\r", b"\n"]),
            [false, false, true, true],
            "a CRLF split in two is one line end, not two"
        );
    }

    #[test]
    fn field_forms_with_and_without_space_and_colon() {
        assert_eq!(
            events(b"id:1\nevent:message\ndata:x\nretry:10\n\n"),
            vec![ev(Some("1"), Some("message"), Some("x"), Some(10))]
        );
        assert_eq!(
            events(b"id: 1\nevent: message\ndata: x\nretry: 10\n\n"),
            vec![ev(Some("1"), Some("message"), Some("x"), Some(10))]
        );
        // Only one space is removed.
        assert_eq!(events(b"data:  x\n\n"), vec![data(" x")]);
        // A field name alone: empty value.
        assert_eq!(events(b"data\n\n"), vec![data("")]);
        assert_eq!(events(b"data\ndata\n\n"), vec![data("\n")]);
        // A colon in the value stays.
        assert_eq!(events(b"data: {\"a\":1}\n\n"), vec![data("{\"a\":1}")]);
        // Unknown fields are ignored; a block with only unknown fields is no event.
        assert_eq!(events(b"foo: bar\n\n"), vec![]);
        assert_eq!(events(b"foo: bar\ndata: x\n\n"), vec![data("x")]);
    }

    #[test]
    fn priming_event_has_id_and_empty_data() {
        let got = events(b"id: 0\ndata:\n\n");
        assert_eq!(got, vec![ev(Some("0"), None, Some(""), None)]);
        assert!(got[0].dispatches());
        let got = events(b"id: s1-0\nretry: 3000\ndata: \n\n");
        assert_eq!(got, vec![ev(Some("s1-0"), None, Some(""), Some(3000))]);
    }

    #[test]
    fn retry_and_id_only_blocks_are_reported_but_do_not_dispatch() {
        let got = events(b"retry: 5000\n\nid: 9\n\n");
        assert_eq!(
            got,
            vec![
                ev(None, None, None, Some(5000)),
                ev(Some("9"), None, None, None)
            ]
        );
        assert!(!got[0].dispatches());
    }

    #[test]
    fn invalid_retry_and_nul_ids_are_ignored() {
        assert_eq!(events(b"retry: 10x\ndata: a\n\n"), vec![data("a")]);
        assert_eq!(events(b"retry: \ndata: a\n\n"), vec![data("a")]);
        assert_eq!(
            events(b"retry: 99999999999999999999999\ndata: a\n\n"),
            vec![data("a")]
        );
        assert_eq!(events(b"id: a\0b\ndata: a\n\n"), vec![data("a")]);
    }

    #[test]
    fn comments_are_reported_and_do_not_make_events() {
        let (items, _) = parse_chunks(&[b": keep-alive\n\n:\n\ndata: x\n: inside\n\n"], 64);
        assert_eq!(
            items,
            vec![
                SseItem::Comment(Bytes::from_static(b" keep-alive")),
                SseItem::Comment(Bytes::new()),
                SseItem::Comment(Bytes::from_static(b" inside")),
                SseItem::Event(data("x")),
            ]
        );
    }

    #[test]
    fn leading_bom_is_skipped_once_even_when_split() {
        assert_eq!(events(b"\xEF\xBB\xBFdata: x\n\n"), vec![data("x")]);
        let (items, _) = parse_chunks(&[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"], 64);
        assert_eq!(items, vec![SseItem::Event(data("x"))]);
        // A second BOM is content: the field name is then not `data`.
        assert_eq!(events(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n"), vec![]);
        // Not a BOM after all: the bytes are line content.
        let (items, _) = parse_chunks(&[b"\xEF", b"\xBBdata: x\n\ndata: y\n\n"], 64);
        assert_eq!(items, vec![SseItem::Event(data("y"))]);
        assert_eq!(
            boundaries(&[b"\xEF\xBB", b"\xBF"]),
            [false, true],
            "half a BOM must not be split by an insertion"
        );
    }

    #[test]
    fn last_event_id_persists_and_empty_id_clears_it() {
        let (_, parser) = parse_chunks(&[b"id: 5\ndata: a\n\ndata: b\n\n"], 64);
        assert_eq!(parser.last_event_id(), &Bytes::from_static(b"5"));
        let (_, parser) = parse_chunks(&[b"id: 5\ndata: a\n\nid\ndata: b\n\n"], 64);
        assert!(parser.last_event_id().is_empty());
        let mut scanner = SseScanner::new();
        scanner.feed(b"id: 5\ndata: a\n\n");
        assert!(scanner.has_last_event_id() && scanner.saw_id());
        scanner.feed(b"id:\ndata: b\n\n");
        assert!(!scanner.has_last_event_id() && scanner.saw_id());
        scanner.feed(b"id: \n\n");
        assert!(!scanner.has_last_event_id());
        scanner.feed(b"id:7\n\n");
        assert!(scanner.has_last_event_id());
    }

    #[test]
    fn a_line_in_one_chunk_is_not_copied() {
        let chunk = Bytes::from_static(b"event: message\ndata: {\"jsonrpc\":\"2.0\"}\n\n");
        let mut parser = SseParser::new();
        let items: Vec<_> = parser.feed(&chunk).collect();
        let SseItem::Event(event) = &items[0] else {
            panic!()
        };
        let data = event.data.as_ref().unwrap();
        // Points into the chunk itself.
        let offset = data.as_ptr() as usize - chunk.as_ptr() as usize;
        assert_eq!(&chunk[offset..offset + data.len()], &data[..]);
        assert!(offset < chunk.len());
    }

    #[test]
    fn an_endless_line_does_not_grow_memory_and_the_event_is_truncated() {
        let mut parser = SseParser::with_max_event_bytes(64);
        let junk = Bytes::from(vec![b'x'; 4096]);
        assert_eq!(parser.feed(&Bytes::from_static(b"data: ")).count(), 0);
        for _ in 0..1000 {
            assert_eq!(parser.feed(&junk).count(), 0);
            assert!(
                parser.partial.capacity() <= 4 * 64,
                "the line buffer stays bounded"
            );
        }
        let items: Vec<_> = parser
            .feed(&Bytes::from_static(b"\n\ndata: ok\n\n"))
            .collect();
        let SseItem::Event(first) = &items[0] else {
            panic!()
        };
        assert!(first.truncated);
        assert_eq!(first.data.as_ref().unwrap().len(), 64 - 6);
        // The parser recovers: the next event is whole.
        assert_eq!(items[1], SseItem::Event(data("ok")));
    }

    #[test]
    fn many_data_lines_are_capped_too() {
        let mut input = Vec::new();
        for _ in 0..100 {
            input.extend_from_slice(b"data: 0123456789\n");
        }
        input.extend_from_slice(b"\n");
        let (items, _) = parse_chunks(&[&input], 32);
        let SseItem::Event(event) = &items[0] else {
            panic!()
        };
        assert!(event.truncated);
        assert_eq!(
            event.data.as_deref(),
            Some(&b"0123456789\n0123456789\n0123456789\n01"[..32])
        );
    }

    #[test]
    fn boundary_is_known_after_each_chunk() {
        let mut scanner = SseScanner::new();
        let mut parser = SseParser::new();
        assert!(scanner.at_event_boundary() && parser.at_event_boundary());
        for (chunk, boundary) in [
            (&b"event: message\n"[..], false),
            (b"data: {\"a\"", false),
            (b":1}\n", false),
            (b"\n", true),
            (b": ping\n", false),
            (b"\n", true),
            (b"id: 1\ndata: x\n\ndata: y\n", false),
            (b"\r\n", true),
        ] {
            scanner.feed(chunk);
            parser.feed(&Bytes::copy_from_slice(chunk)).for_each(drop);
            assert_eq!(
                scanner.at_event_boundary(),
                boundary,
                "scanner after {chunk:?}"
            );
            assert_eq!(
                parser.at_event_boundary(),
                boundary,
                "parser after {chunk:?}"
            );
        }
    }

    #[test]
    fn dropping_the_feed_iterator_still_consumes_the_chunk() {
        let mut parser = SseParser::new();
        let chunk = Bytes::from_static(b"data: a\n\ndata: b\n\nid: 3\n\n");
        let first = parser.feed(&chunk).next();
        assert!(matches!(first, Some(SseItem::Event(_))));
        assert_eq!(parser.last_event_id(), &Bytes::from_static(b"3"));
        assert!(parser.at_event_boundary());
    }

    #[test]
    fn find_eol_finds_the_first_terminator_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                for t in [b'\n', b'\r'] {
                    let mut v = vec![b'a'; len];
                    v[at] = t;
                    assert_eq!(find_eol(&v), Some(at));
                }
            }
            assert_eq!(find_eol(&vec![0x8A; len]), None);
        }
    }

    #[test]
    fn blocks_end_after_each_blank_line_and_comments_make_no_event() {
        let chunk = Bytes::from_static(b": ping\n\ndata: a\r\n\r\nid: 2\rdata: b\r\rdata: c");
        let mut parser = SseParser::new();
        let blocks: Vec<_> = parser.feed_blocks(&chunk).collect();
        assert_eq!(
            blocks,
            vec![
                SseBlock {
                    end: 8,
                    event: None
                },
                SseBlock {
                    end: 19,
                    event: Some(data("a"))
                },
                SseBlock {
                    end: 34,
                    event: Some(ev(Some("2"), None, Some("b"), None))
                },
            ]
        );
        assert_eq!(&chunk[..8], b": ping\n\n");
        assert!(!parser.at_event_boundary());
        // The unfinished last block, when the stream ends there.
        assert_eq!(parser.finish(), Some(data("c")));
        assert!(parser.at_event_boundary());
        assert_eq!(parser.finish(), None);
    }

    #[test]
    fn an_id_with_nul_is_ignored_by_scanner_and_parser_alike() {
        let mut scanner = SseScanner::new();
        let (items, parser) = parse_chunks(&[b"id: 1\n\nid: a", b"\0b\ndata: x\n\n"], 64);
        scanner.feed(b"id: 1\n\nid: a");
        scanner.feed(b"\0b\ndata: x\n\n");
        assert_eq!(parser.last_event_id(), &Bytes::from_static(b"1"));
        assert!(scanner.has_last_event_id());
        assert_eq!(items[1], SseItem::Event(data("x")));
    }

    #[test]
    fn the_parsers_scanner_judges_a_long_id_line_whole() {
        // The NUL lies past the parser's cap: the scanner still sees it.
        for (chunks, has_id) in [
            (&[&b"id: 0123456789abcdef\0x\n\n"[..]][..], false),
            (&[b"id: 0123456789abcdef", b"\0x\n\n"], false),
            (&[b"id: 0123456789abcdefx\n\n"], true),
            (&[b"id: 1\n\nid\n\n"], false),
        ] {
            let mut scanner = SseScanner::new();
            let mut parser = SseParser::with_max_event_bytes(16);
            for chunk in chunks {
                scanner.feed(chunk);
                parser.feed(&Bytes::copy_from_slice(chunk)).for_each(drop);
            }
            assert_eq!(scanner.has_last_event_id(), has_id, "{chunks:?}");
            assert_eq!(parser.scanner().has_last_event_id(), has_id, "{chunks:?}");
            assert_eq!(parser.scanner().saw_id(), scanner.saw_id(), "{chunks:?}");
        }
    }

    #[test]
    fn a_long_id_line_with_nul_past_the_cap_is_ignored_by_the_parser_too() {
        // Found by fuzzing (fuzz/fuzz_targets/sse.rs): the parser kept the id's first bytes
        // as the last event id while the scanner, judging the whole line, ignored it.
        for chunks in [
            &[&b"id: 1\n\nid: 0123456789abcdef\0x\ndata: y\n\n"[..]][..],
            &[b"id: 1\n\nid: 0123456789abcdef", b"\0x\ndata: y\n\n"],
            &[b"id: 1\n\nid: 0123", b"456789abcdef\0x", b"\ndata: y\n\n"],
        ] {
            let mut scanner = SseScanner::new();
            let mut parser = SseParser::with_max_event_bytes(16);
            let mut items = Vec::new();
            for chunk in chunks {
                scanner.feed(chunk);
                items.extend(parser.feed(&Bytes::copy_from_slice(chunk)));
            }
            assert_eq!(
                parser.last_event_id(),
                &Bytes::from_static(b"1"),
                "{chunks:?}"
            );
            assert!(scanner.has_last_event_id() && parser.scanner().has_last_event_id());
            assert_eq!(items[1], SseItem::Event(data("y")));
        }
    }

    #[test]
    fn an_event_written_out_reads_back_the_same() {
        let event = SseEvent {
            id: Some(Bytes::from_static(b"7")),
            event: Some(Bytes::from_static(b"message")),
            data: Some(Bytes::from_static(b"{\"a\":1}\n\nb")),
            retry: Some(3000),
            truncated: false,
        };
        let bytes = event.to_bytes();
        assert_eq!(
            &bytes[..],
            b"id: 7\nevent: message\nretry: 3000\ndata: {\"a\":1}\ndata: \ndata: b\n\n"
        );
        assert_eq!(events(&bytes), vec![event]);
    }

    // -- property tests ----------------------------------------------------------------------

    #[derive(Debug, Clone)]
    struct Model {
        id: Option<String>,
        event: Option<String>,
        data: Vec<String>,
        retry: Option<u64>,
        comment: Option<String>,
    }

    fn value() -> impl Strategy<Value = String> {
        // Printable text without CR/LF; may contain colons, spaces, unicode.
        "[ -~é😀]{0,12}"
    }

    fn model() -> impl Strategy<Value = Model> {
        (
            proptest::option::of("[a-z0-9-]{1,8}"),
            proptest::option::of("[a-z]{1,8}"),
            proptest::collection::vec(value(), 1..4),
            proptest::option::of(0u64..100_000),
            proptest::option::of(value()),
        )
            .prop_map(|(id, event, data, retry, comment)| Model {
                id,
                event,
                data,
                retry,
                comment,
            })
    }

    /// Writes events with line ends drawn from `eols` and returns the bytes and the offsets
    /// at which an event boundary falls.
    fn write(events: &[Model], eols: &[u8], bom: bool, spaces: bool) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(UTF8_BOM);
        }
        let mut boundaries = vec![0, out.len()];
        let mut i = 0;
        let mut prev_cr = false;
        let mut line = |out: &mut Vec<u8>, text: &str| {
            out.extend_from_slice(text.as_bytes());
            let mut pick = eols[i % eols.len()];
            i += 1;
            // A blank line after a CR must not be written as a lone LF (it would merge into CRLF).
            if text.is_empty() && prev_cr && pick == 0 {
                pick = 2;
            }
            out.extend_from_slice(match pick {
                0 => b"\n",
                1 => b"\r",
                _ => b"\r\n",
            });
            prev_cr = pick == 1;
        };
        let sp = if spaces { " " } else { "" };
        for e in events {
            if let Some(c) = &e.comment {
                line(&mut out, &format!(":{c}"));
            }
            if let Some(id) = &e.id {
                line(&mut out, &format!("id:{sp}{id}"));
            }
            if let Some(ev) = &e.event {
                line(&mut out, &format!("event:{sp}{ev}"));
            }
            if let Some(r) = e.retry {
                line(&mut out, &format!("retry:{sp}{r}"));
            }
            for d in &e.data {
                if d.is_empty() && !spaces {
                    line(&mut out, "data");
                } else {
                    line(&mut out, &format!("data: {d}"));
                }
            }
            line(&mut out, "");
            boundaries.push(out.len());
        }
        (out, boundaries)
    }

    fn split_at(input: &[u8], cuts: &[usize]) -> Vec<Bytes> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for c in cuts.into_iter().chain([input.len()]) {
            chunks.push(Bytes::copy_from_slice(&input[last..c]));
            last = c;
        }
        chunks
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_split_yields_the_same_items_as_one_chunk(
            models in proptest::collection::vec(model(), 0..6),
            eols in proptest::collection::vec(0u8..3, 1..8),
            bom in any::<bool>(),
            spaces in any::<bool>(),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
            max in prop_oneof![Just(DEFAULT_MAX_EVENT_BYTES), 16usize..40],
        ) {
            let (input, boundaries) = write(&models, &eols, bom, spaces);
            let mut whole = SseParser::with_max_event_bytes(max);
            let expected: Vec<SseItem> = whole.feed(&Bytes::from(input.clone())).collect();

            let mut parser = SseParser::with_max_event_bytes(max);
            let mut scanner = SseScanner::new();
            let mut got = Vec::new();
            let mut offset = 0;
            for chunk in split_at(&input, &cuts) {
                got.extend(parser.feed(&chunk));
                scanner.feed(&chunk);
                offset += chunk.len();
                // A CR-terminated boundary followed by its LF is still the same boundary.
                // Between the CR and the LF of a blank line's CRLF is a boundary too.
                let at = boundaries.contains(&offset)
                    || (offset > 0 && offset < input.len() && input[offset] == b'\n'
                        && input[offset - 1] == b'\r' && boundaries.contains(&(offset + 1)));
                prop_assert_eq!(scanner.at_event_boundary(), at, "scanner at {}", offset);
                prop_assert_eq!(parser.at_event_boundary(), at, "parser at {}", offset);
            }
            prop_assert_eq!(&got, &expected);
            prop_assert_eq!(scanner.has_last_event_id(), !parser.last_event_id().is_empty());
            prop_assert_eq!(parser.scanner().has_last_event_id(), scanner.has_last_event_id());

            // Blocks: they end exactly at the boundaries, and carry the same events.
            let mut blocks = SseParser::with_max_event_bytes(max);
            let mut ends = Vec::new();
            let mut block_events = Vec::new();
            let mut offset = 0;
            for chunk in split_at(&input, &cuts) {
                for block in blocks.feed_blocks(&chunk) {
                    ends.push(offset + block.end);
                    block_events.extend(block.event);
                }
                offset += chunk.len();
            }
            let mut want_ends: Vec<usize> = boundaries.iter().copied().filter(|&b| b > usize::from(bom) * 3).collect();
            want_ends.dedup();
            // A blank line's CRLF split across chunks: its block ends at the CR.
            for (end, want) in ends.iter().zip(&want_ends) {
                prop_assert!(*end == *want || (*end + 1 == *want && input[*end] == b'\n'), "block end {} for {}", end, want);
            }
            prop_assert_eq!(ends.len(), want_ends.len());
            let item_events: Vec<SseEvent> = expected.iter().filter_map(|i| match i {
                SseItem::Event(e) => Some(e.clone()),
                SseItem::Comment(_) => None,
            }).collect();
            prop_assert_eq!(&block_events, &item_events);
            for event in &item_events {
                if !event.truncated {
                    prop_assert_eq!(events(&event.to_bytes()), vec![event.clone()]);
                }
            }

            if max == DEFAULT_MAX_EVENT_BYTES {
                // And the items are the events that were written.
                let want: Vec<SseItem> = models.iter().flat_map(|m| {
                    let comment = m.comment.as_ref().map(|c| SseItem::Comment(Bytes::from(c.clone())));
                    let event = SseItem::Event(SseEvent {
                        id: m.id.clone().map(Bytes::from),
                        event: m.event.clone().map(Bytes::from),
                        data: Some(Bytes::from(m.data.join("\n"))),
                        retry: m.retry,
                        truncated: false,
                    });
                    comment.into_iter().chain([event])
                }).collect();
                prop_assert_eq!(got, want);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_stay_bounded(
            input in proptest::collection::vec(prop_oneof![
                Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(b'd'), Just(b'i'), any::<u8>()
            ], 0..400),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut parser = SseParser::with_max_event_bytes(16);
            let mut scanner = SseScanner::new();
            let mut whole = SseParser::with_max_event_bytes(16);
            let expected: Vec<SseItem> = whole.feed(&Bytes::from(input.clone())).collect();
            let mut got = Vec::new();
            for chunk in split_at(&input, &cuts) {
                got.extend(parser.feed(&chunk));
                scanner.feed(&chunk);
                prop_assert!(parser.partial.len() <= 16);
                prop_assert_eq!(scanner.at_event_boundary(), parser.at_event_boundary());
            }
            for item in &got {
                if let SseItem::Event(e) = item {
                    prop_assert!(e.data.as_ref().map_or(0, |d| d.len()) <= 16);
                }
            }
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn the_parsers_scanner_is_the_scanner_on_any_input(
            input in proptest::collection::vec(prop_oneof![
                Just(&b"\n"[..]), Just(&b"\r"[..]), Just(&b":"[..]), Just(&b" "[..]),
                Just(&b"\0"[..]), Just(&b"x"[..]), Just(&b"id"[..]), Just(&b"data"[..]),
                Just(&b"0123456789abcdef"[..]), Just(&UTF8_BOM[..]), Just(&UTF8_BOM[..2]),
            ], 0..60),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
            max in prop_oneof![Just(DEFAULT_MAX_EVENT_BYTES), 16usize..24],
        ) {
            let input = input.concat();
            let mut parser = SseParser::with_max_event_bytes(max);
            let mut blocks = SseParser::with_max_event_bytes(max);
            let mut scanner = SseScanner::new();
            for chunk in split_at(&input, &cuts) {
                parser.feed(&chunk).for_each(drop);
                blocks.feed_blocks(&chunk).for_each(drop);
                scanner.feed(&chunk);
                for parsed in [parser.scanner(), blocks.scanner()] {
                    prop_assert_eq!(parsed.at_event_boundary(), scanner.at_event_boundary());
                    prop_assert_eq!(parsed.at_stream_start(), scanner.at_stream_start());
                    prop_assert_eq!(parsed.has_last_event_id(), scanner.has_last_event_id());
                    prop_assert_eq!(parsed.saw_id(), scanner.saw_id());
                }
            }
        }
    }
}
