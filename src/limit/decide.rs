//! One decision: which rules a request meets, under which keys, at what cost; taken from the
//! local store at once, or handed to the shared store.

use std::cell::{Cell, OnceCell};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Extensions, HeaderMap, Method};

use super::local::LocalStore;
use super::rule::{Budget, Per, Rule};
use crate::context::{PeerAddr, Principal, RequestOrigin};
use crate::error::{Reason, RejectedBy, Rejection};
use crate::protocol::header::MCP_SESSION_ID;
use crate::protocol::{McpRequest, RequestId, SessionId};

/// What a decision reads from one request. The session and the client address are read
/// only when a rule needs them.
pub(crate) struct Facts<'a> {
    pub(crate) mcp: Option<&'a McpRequest>,
    pub(crate) principal: Option<&'a Principal>,
    pub(crate) http_method: &'a str,
    headers: &'a HeaderMap,
    ext: &'a Extensions,
    session: OnceCell<Option<SessionId>>,
    ip: OnceCell<Option<IpAddr>>,
    /// Keyed hashes of the caller parts, computed once per call whatever the number of
    /// rules: principal, client, session, address.
    part_hashes: [Cell<Option<u64>>; 4],
}

impl<'a> Facts<'a> {
    pub(crate) fn of(method: &'a Method, headers: &'a HeaderMap, ext: &'a Extensions) -> Self {
        Facts {
            mcp: ext.get::<Arc<McpRequest>>().map(|m| &**m),
            principal: ext.get::<Principal>(),
            http_method: method.as_str(),
            headers,
            ext,
            session: OnceCell::new(),
            ip: OnceCell::new(),
            part_hashes: Default::default(),
        }
    }

    /// The cached hash of caller part `slot`, computed by `hash` on first use.
    fn part_hash(&self, slot: usize, hash: impl FnOnce() -> u64) -> u64 {
        let cell = &self.part_hashes[slot];
        match cell.get() {
            Some(h) => h,
            None => {
                let h = hash();
                cell.set(Some(h));
                h
            }
        }
    }

    /// The client address: the guard's client IP (behind trusted proxies), else the peer.
    fn ip(&self) -> Option<IpAddr> {
        *self.ip.get_or_init(|| {
            self.ext
                .get::<RequestOrigin>()
                .and_then(RequestOrigin::client_ip)
                .or_else(|| self.ext.get::<PeerAddr>().map(|PeerAddr(addr)| addr.ip()))
                .or_else(|| self.ext.get::<SocketAddr>().map(SocketAddr::ip))
        })
    }

    /// The legacy session. The session layer runs inside this one: the header is what there
    /// is. A made-up id only spends a budget of its own, and the session layer refuses it next.
    fn session(&self) -> Option<&SessionId> {
        self.session
            .get_or_init(|| {
                self.headers
                    .get(MCP_SESSION_ID)
                    .and_then(|v| SessionId::from_header(v).ok())
            })
            .as_ref()
    }

    /// The JSON-RPC id a refusal answers.
    pub(crate) fn id(&self) -> Option<RequestId> {
        self.mcp.and_then(|m| m.id().cloned())
    }

    /// Each counted message as (method, tool): every message of a POST that has a method (a
    /// batch counts each), or the HTTP method for a request without a body.
    fn for_each_message(&self, mut f: impl FnMut(&'a str, Option<&'a str>) -> bool) -> bool {
        match self.mcp.filter(|m| m.body().is_some()) {
            Some(mcp) => {
                for message in mcp.messages() {
                    if let Some(method) = message.method() {
                        let tool = match message.target() {
                            Some(target @ crate::protocol::Target::Tool(_)) => Some(target.name()),
                            _ => None,
                        };
                        if !f(method, tool) {
                            return false;
                        }
                    }
                }
                true
            }
            None => f(self.http_method, None),
        }
    }
    /// The first counted message `rule` meets, if any.
    fn first_met(&self, rule: &Rule) -> Option<(&'a str, Option<&'a str>)> {
        let mut first = None;
        self.for_each_message(|method, tool| {
            if rule.matches(method, tool) {
                first = Some((method, tool));
            }
            first.is_none()
        });
        first
    }
}

/// Counters of what the layer decided, for metrics (cheap to read at any time).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) refused: AtomicU64,
    pub(crate) store_failed_open: AtomicU64,
    pub(crate) store_failed_closed: AtomicU64,
}

/// A snapshot of a [`LimitLayer`](super::LimitLayer)'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LimitCounts {
    /// Calls refused with 429.
    pub refused: u64,
    /// Decisions the shared store could not make, let through (fail-open rules).
    pub store_failed_open: u64,
    /// Decisions the shared store could not make, refused with 503 (fail-closed rules).
    pub store_failed_closed: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> LimitCounts {
        LimitCounts {
            refused: self.refused.load(Ordering::Relaxed),
            store_failed_open: self.store_failed_open.load(Ordering::Relaxed),
            store_failed_closed: self.store_failed_closed.load(Ordering::Relaxed),
        }
    }
}

/// A place held in a concurrency budget, given back on drop.
#[derive(Debug)]
// The variants are held for their `Drop`, never read.
#[allow(dead_code)]
pub(crate) enum Permit {
    /// In this instance's memory.
    Local(LocalPermit),
    /// A lease in the shared store, renewed while held.
    #[cfg(feature = "redis")]
    Remote(super::lease::Lease),
}

/// A place in the local store.
#[derive(Debug)]
pub(crate) struct LocalPermit {
    store: Arc<LocalStore>,
    key: u64,
}

impl Permit {
    /// Takes one of `max` places under `key`; `None` when all are held.
    pub(crate) fn acquire(store: &Arc<LocalStore>, key: u64, max: u32) -> Option<Permit> {
        store.acquire(key, max).then(|| {
            Permit::Local(LocalPermit {
                store: Arc::clone(store),
                key,
            })
        })
    }
}

impl Drop for LocalPermit {
    fn drop(&mut self) {
        self.store.release(self.key);
    }
}

/// What a passed call carries along: its places, and the stream limits of the rules it met.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    pub(crate) permits: Vec<Permit>,
    pub(crate) lifetime: Option<Duration>,
    pub(crate) idle: Option<Duration>,
}

impl Admission {
    pub(crate) fn is_empty(&self) -> bool {
        self.permits.is_empty() && self.lifetime.is_none() && self.idle.is_none()
    }
}

/// One budget a call draws on in the shared store.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[derive(Debug, Clone)]
pub(crate) struct RemoteTake {
    pub(crate) rule: usize,
    /// The caller's part of the key (principal, client, session, ip), for the hash tag.
    pub(crate) tag: String,
    /// The whole key as text.
    pub(crate) key: String,
    pub(crate) budget: Budget,
    pub(crate) cost: u32,
}

/// The outcome of the synchronous part of a decision.
pub(crate) enum Verdict {
    Pass(Admission),
    Refuse(Rejection),
    /// Rates and quotas are kept in the shared store: ask it (the admission holds the local
    /// concurrency places already taken).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Remote(Admission, Vec<RemoteTake>),
}

/// The rules and the local store.
#[derive(Debug)]
pub(crate) struct Limiter {
    pub(crate) rules: Box<[Rule]>,
    pub(crate) names: Box<[Box<str>]>,
    pub(crate) local: Arc<LocalStore>,
    pub(crate) hasher: std::hash::RandomState,
    /// A random seed per rule, where its keys start.
    seeds: Box<[u64]>,
    pub(crate) counters: Counters,
    /// Rates and quotas go to the shared store.
    pub(crate) remote: bool,
}

/// A piece of a key: what to hash and how to show it.
enum Part<'a> {
    Principal(&'a Principal),
    Client(&'a str),
    Session(&'a SessionId),
    Ip(Option<IpAddr>),
    Text(&'static str, &'a str),
}

impl Limiter {
    pub(crate) fn new(rules: Vec<Rule>, remote: bool) -> Self {
        let names = rules.iter().map(|r| r.name().into_boxed_str()).collect();
        let hasher = std::hash::RandomState::new();
        let seeds = (0..rules.len() as u64)
            .map(|i| hasher.hash_one((0x5eed_u64, i)))
            .collect();
        Limiter {
            rules: rules.into_boxed_slice(),
            names,
            local: LocalStore::new(),
            hasher,
            seeds,
            counters: Counters::default(),
            remote,
        }
    }

    /// The parts of `rule`'s key for one message, in a fixed order.
    fn parts<'a>(
        per: Per,
        facts: &'a Facts<'_>,
        method: &'a str,
        tool: Option<&'a str>,
        mut f: impl FnMut(Part<'a>),
    ) {
        // A caller part the request lacks falls back to the next better known one, and at
        // last to the client address: an anonymous caller is limited per address.
        let caller = |facts: &'a Facts<'_>| match facts.principal {
            Some(p) => Part::Principal(p),
            None => Part::Ip(facts.ip()),
        };
        if per.contains(Per::PRINCIPAL) {
            f(caller(facts));
        }
        if per.contains(Per::CLIENT) {
            match facts.principal.and_then(Principal::client_id) {
                Some(client) => f(Part::Client(client)),
                None => f(caller(facts)),
            }
        }
        if per.contains(Per::SESSION) {
            match facts.session() {
                Some(session) => f(Part::Session(session)),
                None => f(caller(facts)),
            }
        }
        if per.contains(Per::IP) {
            f(Part::Ip(facts.ip()));
        }
        if per.contains(Per::METHOD) {
            f(Part::Text("method", method));
        }
        if per.contains(Per::TOOL) {
            f(Part::Text("tool", tool.unwrap_or("")));
        }
    }

    /// The 64-bit key of (rule, parts) in the local store: the rule's random seed, then each
    /// part's keyed SipHash (randomly keyed per layer, so no caller can aim at another's key)
    /// folded in with a 64-bit mixer (a bijection). The caller parts are hashed once per call
    /// and reused by every rule; only method and tool parts are hashed per message.
    fn hash(&self, index: usize, facts: &Facts<'_>, method: &str, tool: Option<&str>) -> u64 {
        let mut key = self.seeds[index];
        Self::parts(self.rules[index].per, facts, method, tool, |part| {
            let part = match part {
                Part::Principal(p) => facts.part_hash(0, || {
                    let issuer = p.issuer().unwrap_or_default().as_bytes();
                    let subject = p.subject().as_bytes();
                    // Its kind (low byte) and lengths in one word, then its bytes, so no two
                    // different parts feed the same stream; in one write when they fit (each
                    // write has a fixed cost).
                    let head = 1 | (issuer.len() as u64) << 8 | (subject.len() as u64) << 36;
                    let mut buf = [0u8; 128];
                    let len = 8 + issuer.len() + subject.len();
                    self.sip(|h| {
                        if len <= buf.len() {
                            buf[..8].copy_from_slice(&head.to_le_bytes());
                            buf[8..8 + issuer.len()].copy_from_slice(issuer);
                            buf[8 + issuer.len()..len].copy_from_slice(subject);
                            h.write(&buf[..len]);
                        } else {
                            h.write_u64(head);
                            h.write(issuer);
                            h.write(subject);
                        }
                    })
                }),
                Part::Client(c) => facts.part_hash(1, || {
                    self.sip(|h| {
                        h.write_u64(2 | (c.len() as u64) << 8);
                        h.write(c.as_bytes());
                    })
                }),
                Part::Session(s) => facts.part_hash(2, || {
                    self.sip(|h| {
                        h.write_u64(3 | (s.as_str().len() as u64) << 8);
                        h.write(s.as_str().as_bytes());
                    })
                }),
                Part::Ip(ip) => facts.part_hash(3, || {
                    self.sip(|h| match ip {
                        None => h.write_u64(4),
                        Some(IpAddr::V4(ip)) => h.write_u64(5 | u64::from(ip.to_bits()) << 8),
                        Some(IpAddr::V6(ip)) => {
                            h.write_u64(6);
                            h.write_u128(ip.to_bits());
                        }
                    })
                }),
                Part::Text(name, value) => self.sip(|h| {
                    h.write_u64(7 | (name.len() as u64) << 8 | (value.len() as u64) << 16);
                    h.write(value.as_bytes());
                }),
            };
            key = mix(key ^ part);
        });
        key
    }

    /// A keyed SipHash of what `write` feeds it.
    fn sip(&self, write: impl FnOnce(&mut std::hash::DefaultHasher)) -> u64 {
        let mut h = self.hasher.build_hasher();
        write(&mut h);
        h.finish()
    }

    /// The key as text: `principal=alice+tool=deploy_prod`. With `full`, the principal's
    /// issuer too (for the shared store's keys); without, what a refusal may show its caller.
    fn key_text(
        &self,
        index: usize,
        facts: &Facts<'_>,
        method: &str,
        tool: Option<&str>,
        full: bool,
        caller_only: bool,
    ) -> String {
        use std::fmt::Write;
        let mut text = String::new();
        let per = self.rules[index].per;
        let per = if caller_only { per.caller_parts() } else { per };
        Self::parts(per, facts, method, tool, |part| {
            if !text.is_empty() {
                text.push('+');
            }
            let _ = match part {
                Part::Principal(p) if full => {
                    write!(
                        text,
                        "principal={}\u{1f}{}",
                        p.issuer().unwrap_or(""),
                        p.subject()
                    )
                }
                Part::Principal(p) => write!(text, "principal={}", p.subject()),
                Part::Client(c) => write!(text, "client={c}"),
                Part::Session(s) => write!(text, "session={s}"),
                Part::Ip(Some(ip)) => write!(text, "ip={ip}"),
                Part::Ip(None) => write!(text, "ip=unknown"),
                Part::Text(name, value) => write!(text, "{name}={value}"),
            };
        });
        if text.is_empty() {
            text.push_str("global");
        }
        text
    }

    /// Decides what it can at once: every budget from the local store, or (with a shared
    /// store) the concurrency places here and the rest handed back as [`Verdict::Remote`].
    pub(crate) fn decide(&self, facts: &Facts<'_>) -> Verdict {
        let mut admission = Admission::default();
        let mut remote = Vec::new();
        let mut now = None;
        for (index, rule) in self.rules.iter().enumerate() {
            let mut refused = None;
            let mut met = false;
            // What the shared store decides for one message.
            let remote_take = |method: &str, tool: Option<&str>, cost: u32| RemoteTake {
                rule: index,
                tag: self.key_text(index, facts, method, tool, true, true),
                key: self.key_text(index, facts, method, tool, true, false),
                budget: rule.budget,
                cost,
            };
            let refuse = |method: &str, tool: Option<&str>, (reason, wait): (Reason, Duration)| {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                let key = self.key_text(index, facts, method, tool, false, false);
                Rejection::limited(RejectedBy::Limit, reason, facts.id(), wait)
                    .with_limit_rule(&self.names[index], &key)
            };
            match rule.budget {
                Budget::Concurrent { max } => {
                    // One place per call: the first message the rule meets.
                    if let Some((method, tool)) = facts.first_met(rule) {
                        met = true;
                        if self.remote {
                            // A lease in the shared store, decided with the rates and quotas
                            // of the same caller.
                            remote.push(remote_take(method, tool, 1));
                        } else if let Some(permit) =
                            Permit::acquire(&self.local, self.hash(index, facts, method, tool), max)
                        {
                            admission.permits.push(permit);
                        } else {
                            // No way to know when a stream ends: ask for a retry in a second.
                            let why = (Reason::ConcurrencyLimited, Duration::from_secs(1));
                            refused = Some(refuse(method, tool, why));
                        }
                    }
                }
                Budget::Rate { .. } | Budget::Quota { .. } if self.remote => {
                    facts.for_each_message(|method, tool| {
                        if rule.matches(method, tool) {
                            met = true;
                            remote.push(remote_take(method, tool, rule.cost_of(tool)));
                        }
                        true
                    });
                }
                Budget::Rate { .. } | Budget::Quota { .. } => {
                    let mut taken = 0usize;
                    facts.for_each_message(|method, tool| {
                        if !rule.matches(method, tool) {
                            return true;
                        }
                        met = true;
                        let key = self.hash(index, facts, method, tool);
                        match self.take(rule, key, rule.cost_of(tool), &mut now) {
                            Ok(()) => {
                                taken += 1;
                                true
                            }
                            Err(why) => {
                                refused = Some(refuse(method, tool, why));
                                false
                            }
                        }
                    });
                    if refused.is_some() {
                        self.refund(index, facts, taken);
                    }
                }
            }
            if let Some(rejection) = refused {
                // Give back what the rules before this one took.
                for earlier in 0..index {
                    if !matches!(self.rules[earlier].budget, Budget::Concurrent { .. })
                        && !self.remote
                    {
                        self.refund(earlier, facts, usize::MAX);
                    }
                }
                return Verdict::Refuse(rejection);
            }
            if met {
                admission.lifetime = min_some(admission.lifetime, rule.lifetime);
                admission.idle = min_some(admission.idle, rule.idle);
            }
        }
        if remote.is_empty() {
            Verdict::Pass(admission)
        } else {
            Verdict::Remote(admission, remote)
        }
    }

    /// Takes `cost` from `rule`'s budget under `key`; `now` is read on the first take of a
    /// decision and reused by the others (one clock read per call, not per rule).
    fn take(
        &self,
        rule: &Rule,
        key: u64,
        cost: u32,
        now: &mut Option<u64>,
    ) -> Result<(), (Reason, Duration)> {
        let now = *now.get_or_insert_with(|| self.local.now());
        match rule.budget {
            Budget::Rate { interval, burst } => self
                .local
                .rate(key, interval, burst, cost, now)
                .map_err(|wait| (Reason::RateLimited, wait)),
            Budget::Quota { max, window } => self
                .local
                .quota(key, max, window, cost, now)
                .map_err(|wait| (Reason::QuotaExceeded, wait)),
            Budget::Concurrent { .. } => Ok(()),
        }
    }

    /// Gives back the first `count` takes of rule `index` for this request (they are
    /// recomputed: same messages, same keys, same costs).
    fn refund(&self, index: usize, facts: &Facts<'_>, count: usize) {
        let rule = &self.rules[index];
        let mut left = count;
        facts.for_each_message(|method, tool| {
            if left == 0 {
                return false;
            }
            if rule.matches(method, tool) {
                let key = self.hash(index, facts, method, tool);
                let cost = rule.cost_of(tool);
                match rule.budget {
                    Budget::Rate { interval, burst } => {
                        self.local.refund_rate(key, interval, burst, cost)
                    }
                    Budget::Quota { .. } => self.local.refund_quota(key, cost),
                    Budget::Concurrent { .. } => {}
                }
                left -= 1;
            }
            true
        });
    }

    /// The refusal for a shared-store answer "take `index` refused, retry after `wait`".
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn remote_refusal(
        &self,
        take: &RemoteTake,
        id: Option<RequestId>,
        wait: Duration,
    ) -> Rejection {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        let reason = match take.budget {
            Budget::Quota { .. } => Reason::QuotaExceeded,
            Budget::Concurrent { .. } => Reason::ConcurrencyLimited,
            Budget::Rate { .. } => Reason::RateLimited,
        };
        // The shown key leaves out the issuer, as local refusals do.
        let shown = shown_key(&take.key);
        Rejection::limited(RejectedBy::Limit, reason, id, wait)
            .with_limit_rule(&self.names[take.rule], &shown)
    }
}

/// A full key without the principal's issuer.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
fn shown_key(full: &str) -> String {
    full.split('+')
        .map(|part| match part.split_once('\u{1f}') {
            Some((issuer_part, subject)) if issuer_part.starts_with("principal=") => {
                format!("principal={subject}")
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// A 64-bit mixer (MurmurHash3's finalizer): a bijection that spreads every input bit.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn min_some(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
