//! Guard overhead: the guard around a trivial inner service against the bare service.
//!
//! `cargo bench --bench guard -- --warm-up-time 1 --measurement-time 3`

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures::FutureExt;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use mcp_edge::guard::{GuardLayer, PeerAddr, TrustedProxies};
use tower::{Layer, Service, service_fn};

type Req = Request<Full<Bytes>>;

fn bare() -> impl Service<Req, Response = Response<Full<Bytes>>, Error = Infallible> + Clone {
    service_fn(|_request: Req| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
    })
}

fn request(headers: &[(&'static str, &'static str)], peer: Option<SocketAddr>) -> Req {
    let mut builder = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        // Static values share their bytes on clone, as hyper's (slices of its read buffer) do.
        builder = builder.header(*name, HeaderValue::from_static(value));
    }
    let mut request = builder.body(Full::default()).unwrap();
    if let Some(peer) = peer {
        request.extensions_mut().insert(PeerAddr(peer));
    }
    request
}

fn run<S>(c: &mut Criterion, name: &str, mut service: S, make: impl Fn() -> Req)
where
    S: Service<Req>,
    S::Error: std::fmt::Debug,
{
    c.bench_function(name, |b| {
        b.iter_batched(
            &make,
            |request| {
                let response = service.call(request).now_or_never().unwrap().unwrap();
                std::hint::black_box(response)
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench(c: &mut Criterion) {
    let local = [("host", "localhost:8080")];
    let local_origin = [
        ("host", "localhost:8080"),
        ("origin", "http://localhost:6274"),
    ];
    let proxied = [
        ("host", "10.0.0.9:8080"),
        ("x-forwarded-host", "mcp.example.com"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "203.0.113.7, 10.0.0.3"),
    ];
    let peer: SocketAddr = "10.0.0.2:40000".parse().unwrap();

    run(c, "bare", bare(), || request(&local, None));
    run(
        c,
        "guard/loopback_host",
        GuardLayer::loopback().layer(bare()),
        || request(&local, None),
    );
    run(
        c,
        "guard/loopback_host_and_origin",
        GuardLayer::loopback().layer(bare()),
        || request(&local_origin, None),
    );
    run(
        c,
        "guard/trusted_proxy_x_forwarded",
        GuardLayer::new()
            .allow_hosts(["mcp.example.com"])
            .trusted_proxies(TrustedProxies::new(["10.0.0.0/8"]))
            .layer(bare()),
        || request(&proxied, Some(peer)),
    );
    run(
        c,
        "guard/refused_evil_host",
        GuardLayer::loopback().layer(bare()),
        || request(&[("host", "evil.example.com")], None),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
