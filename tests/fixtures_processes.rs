//! The process launchers work: a real redis-server and a real nginx on free ports.
//! Skipped (with a printed reason) when the binaries are absent, unless
//! MCP_EDGE_REQUIRE_SERVERS=1.

mod common;

use common::*;

#[test]
fn redis_answers_commands_stops_like_a_crash_and_restarts_empty_on_the_same_port() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    assert!(redis.url().starts_with("redis://127.0.0.1:"));
    assert_eq!(redis.command(&["SET", "k", "v"]).unwrap(), "+OK\r\n");
    assert_eq!(redis.command(&["GET", "k"]).unwrap(), "$1\r\nv\r\n");

    let port = redis.port();
    redis.stop();
    assert!(!redis.is_running());
    assert!(
        redis.command(&["PING"]).is_err(),
        "a stopped redis must refuse connections"
    );

    redis.restart();
    assert_eq!(redis.port(), port, "restart keeps the port");
    assert_eq!(redis.command(&["PING"]).unwrap(), "+PONG\r\n");
    assert_eq!(
        redis.command(&["GET", "k"]).unwrap(),
        "$-1\r\n",
        "no data survives a restart"
    );
}

#[test]
fn dropping_redis_kills_the_process() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let addr = redis.addr();
    drop(redis);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn nginx_serves_a_generated_config_and_reports_a_bad_one() {
    let Some(nginx) = Nginx::start("location = /hello { return 200 \"hi\"; }") else {
        return;
    };
    let body = std::thread::spawn({
        let url = nginx.url_for("/hello");
        move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    http_client()
                        .get(url)
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap()
                })
        }
    })
    .join()
    .unwrap();
    assert_eq!(body, "hi");

    let bad = std::panic::catch_unwind(|| Nginx::start("this is not nginx syntax;"));
    assert!(bad.is_err(), "a rejected config must fail loudly");
}

#[tokio::test]
async fn rmcp_clients_of_both_eras_work_through_nginx_with_progress() {
    let upstream = serve(rmcp_router());
    let Some(nginx) = Nginx::start(&format!(
        "location / {{
            proxy_pass http://{};
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
        }}",
        upstream.addr
    )) else {
        return;
    };
    let url = nginx.url_for("/mcp");
    for client in [legacy_client(&url).await, modern_client(&url).await] {
        let echoed = call_tool(&client, "echo", serde_json::json!({"text": "via nginx"}))
            .await
            .expect("echo through nginx");
        assert_eq!(text_of(&echoed), "via nginx");
        let (counted, progress) = call_tool_with_progress(
            &client,
            "slow_count",
            serde_json::json!({"n": 3, "delay_ms": 20}),
            3,
        )
        .await;
        assert_eq!(text_of(&counted.expect("slow_count")), "counted to 3");
        assert_eq!(progress.len(), 3, "nginx log: {}", nginx.error_log());
        client.cancel().await.expect("close");
    }
}

#[test]
fn a_missing_binary_skips_or_fails_as_mcp_edge_require_servers_says() {
    let required = std::env::var(REQUIRE_SERVERS_ENV).is_ok_and(|v| v == "1");
    let found = std::panic::catch_unwind(|| find_binary("mcp-edge-no-such-server"));
    if required {
        assert!(
            found.is_err(),
            "with {REQUIRE_SERVERS_ENV}=1 a missing binary must fail"
        );
    } else {
        assert_eq!(
            found.ok(),
            Some(None),
            "without it, a missing binary is a skip"
        );
    }
}

#[test]
fn temp_dirs_are_removed_on_drop() {
    let dir = TempDir::new("probe");
    let path = dir.path().to_owned();
    std::fs::write(path.join("file"), b"x").unwrap();
    drop(dir);
    assert!(!path.exists());
}
