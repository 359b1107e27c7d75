//! The dashboards API over real snapshots of fake clusters: the matrix and
//! every flag, compare, service, history, point-in-time and diff, CSV,
//! pagination, team scoping and what a request costs in store calls. Over
//! the memory store, clusters reached by endpoint and CA: `cargo test -p
//! dashboards` needs nothing outside the process (one journey on DynamoDB
//! and EKS on moto is in the integration tests).

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use api_bed::{ApiBed, objects, plan};
use http::StatusCode;
use jiff::Timestamp;
use serde_json::Value;
use shared::clock::Clock;
use shared::store::memory::MemoryStore;

/// The bed after two rounds, as a release goes: at `t0` cart 1.2.0 runs in
/// dev, search 3.0.0 and ledger 4.9.0 everywhere; at `t1` dev has moved
/// cart to 1.3.0, and dev, stg and prod-a search to 3.1.0 (prod-b is still
/// on 3.0.0): the earlier columns ran what the later ones run, so drift and
/// mixed versions without a broken promotion order. But prod has taken
/// ledger 5.0.0, which dev and stg, watched since `t0`, never ran.
struct Rounds {
    bed: ApiBed<MemoryStore>,
    t0: Timestamp,
    t1: Timestamp,
}

/// The bed over the memory store, serving the dashboards routes.
async fn bed() -> ApiBed<MemoryStore> {
    ApiBed::in_memory(|ports| dashboards::router(ports.context())).await
}

async fn two_rounds() -> Rounds {
    let bed = bed().await;
    for short in ["dev-a", "stg-a", "prod-a", "prod-b"] {
        let mut early = plan(short);
        for p in &mut early {
            match p.service {
                "cart" => p.version = "1.2.0",
                "search" => p.version = "3.0.0",
                "ledger" => p.version = "4.9.0",
                _ => {}
            }
        }
        bed.fake(short).set_objects(&objects(&early));
    }
    let t0 = bed.clock.now();
    bed.snapshot_all().await;
    bed.clock.advance(Duration::from_secs(600));
    for short in ["dev-a", "stg-a", "prod-a", "prod-b"] {
        bed.fake(short).set_objects(&objects(&plan(short)));
    }
    let t1 = bed.clock.now();
    bed.snapshot_all().await;
    Rounds { bed, t0, t1 }
}

fn plus(t: Timestamp, seconds: i64) -> Timestamp {
    t.checked_add(jiff::SignedDuration::from_secs(seconds)).unwrap()
}

fn rows_by_service(body: &Value) -> BTreeMap<String, Value> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["service"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn flag(row: &Value, name: &str) -> bool {
    row["flags"][name].as_bool().unwrap()
}

#[tokio::test]
async fn the_matrix_shows_every_flag_with_cells_and_freshness() {
    let Rounds { bed, t1, .. } = two_rounds().await;
    let reply = bed.get("/dashboards/shop", &bed.platform).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = &reply.body;
    assert_eq!(body["dashboard"]["title"], "Shop");
    let columns: Vec<&str> = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["environment"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["dev", "stg", "prod"]);
    let rows = rows_by_service(body);
    assert_eq!(
        rows.keys().map(String::as_str).collect::<Vec<_>>(),
        ["billing", "cart", "catalog", "checkout", "ledger", "orders", "search"],
        "metrics runs in ops, which the selector leaves out"
    );

    assert!(flag(&rows["checkout"], "consistent"));
    let cart = &rows["cart"];
    assert!(flag(cart, "drift") && !flag(cart, "mixed") && !flag(cart, "consistent"));
    assert!(!flag(cart, "promotionOrderBroken"), "dev ran 1.2.0 before stg and prod did");
    let search = &rows["search"];
    assert!(
        flag(search, "mixed") && flag(search, "drift") && !flag(search, "promotionOrderBroken")
    );
    assert!(flag(&rows["billing"], "digestDrift") && !flag(&rows["billing"], "drift"));
    assert!(flag(&rows["ledger"], "promotionOrderBroken"), "5.0.0 never ran in dev or stg");
    assert!(flag(&rows["catalog"], "rolling"));
    assert!(!rows.values().any(|r| flag(r, "stale")));

    // Cells: versions, images with digests, placements, ready/desired, last change.
    let dev_cart = &cart["cells"][0];
    assert_eq!(dev_cart["versions"], serde_json::json!(["1.3.0"]));
    assert_eq!(dev_cart["lastChange"].as_str().unwrap().parse::<Timestamp>().unwrap(), t1);
    assert_eq!(dev_cart["placements"][0]["cluster"], bed.cluster("dev-a"));
    assert_eq!(dev_cart["placements"][0]["namespace"], "shop");
    let prod_search = &rows["search"]["cells"][2];
    assert_eq!(prod_search["versions"], serde_json::json!(["3.0.0", "3.1.0"]));
    assert_eq!(prod_search["placements"].as_array().unwrap().len(), 2);
    let billing_digests: Vec<&str> = [0, 2]
        .iter()
        .map(|c| rows["billing"]["cells"][c]["images"][0]["digest"].as_str().unwrap())
        .collect();
    assert!(billing_digests.iter().all(|d| d.starts_with("sha256:")));
    assert_ne!(billing_digests[0], billing_digests[1], "the re-pushed tag's digest");
    let orders = &rows["orders"];
    assert!(orders["cells"][0].is_null(), "orders does not run in dev");
    assert_eq!(
        (orders["cells"][1]["ready"].as_u64(), orders["cells"][1]["desired"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(rows["catalog"]["cells"][1]["rolling"], true);
    assert_eq!(dev_cart["freshness"]["stale"], false);

    let summary = &body["summary"];
    assert_eq!(summary["services"], 7);
    assert_eq!(summary["drift"], 3, "cart, search, ledger: {summary}");
    assert_eq!((summary["mixed"].as_u64(), summary["digestDrift"].as_u64()), (Some(1), Some(1)));
    assert_eq!(
        (summary["promotionOrderBroken"].as_u64(), summary["consistent"].as_u64()),
        (Some(1), Some(3))
    );

    // A failed refresh of prod-b: the last good data stays, marked stale.
    bed.fake("prod-b").inject(fake_kube::FaultRule::on("/", fake_kube::Fault::Status(500)));
    bed.clock.advance(Duration::from_secs(60));
    let config = bed.fleet.current().await.unwrap();
    let request = shared::model::SnapshotRequest::cluster(bed.cluster("prod-b").parse().unwrap());
    let _ = bed.snapshotter.run(&config, &request).await;
    let rows = rows_by_service(&bed.get("/dashboards/shop", &bed.platform).await.body);
    let search_prod = &rows["search"]["cells"][2];
    assert_eq!(search_prod["versions"], serde_json::json!(["3.0.0", "3.1.0"]), "last good data");
    assert_eq!(search_prod["freshness"]["lastAttemptFailed"], true);
    assert!(flag(&rows["search"], "stale") && flag(&rows["checkout"], "stale"));
    assert_eq!(rows["cart"]["cells"][0]["freshness"]["stale"], false, "dev is still fresh");
}

#[tokio::test]
async fn filters_pages_and_csv() {
    let Rounds { bed, .. } = two_rounds().await;
    let whole = bed.get("/dashboards/shop?limit=500", &bed.platform).await.body;
    let paged = bed.all("/dashboards/shop?limit=2", &bed.platform).await;
    assert_eq!(&paged, whole["items"].as_array().unwrap(), "pages cover the rows once, in order");
    let first = bed.get("/dashboards/shop?limit=2", &bed.platform).await.body;
    assert_eq!(first["summary"], whole["summary"], "the summary counts every row, on every page");

    let problems =
        rows_by_service(&bed.get("/dashboards/shop?problems=true", &bed.platform).await.body);
    assert_eq!(
        problems.keys().map(String::as_str).collect::<Vec<_>>(),
        ["billing", "cart", "ledger", "search"]
    );
    let drift = rows_by_service(&bed.get("/dashboards/shop?flag=drift", &bed.platform).await.body);
    assert_eq!(drift.len(), 3);
    let searched = rows_by_service(&bed.get("/dashboards/shop?q=CAR", &bed.platform).await.body);
    assert_eq!(searched.keys().collect::<Vec<_>>(), ["cart"]);
    let ops = bed.get("/dashboards/shop?namespace=ops", &bed.platform).await.body;
    assert_eq!(ops["items"], serde_json::json!([]), "nothing of the shop runs in ops");

    for (query, parameter) in [
        ("problems=maybe", "problems"),
        ("flag=purple", "flag"),
        ("namespace=Bad_NS", "namespace"),
        ("limit=0", "limit"),
        ("cursor=garbage", "cursor"),
        ("at=yesterday", "at"),
        ("format=xml", "format"),
    ] {
        let reply = bed.get(&format!("/dashboards/shop?{query}"), &bed.platform).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{parameter}:")), "{query}: {message}");
    }
    let unknown = bed.get("/dashboards/shop?colour=red", &bed.platform).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(bed.get("/dashboards/nope", &bed.platform).await.status, StatusCode::NOT_FOUND);

    let csv = bed.get("/dashboards/shop?format=csv", &bed.platform).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "service,dev,stg,prod,flags");
    assert!(lines.contains(&"cart,1.3.0,1.2.0,1.2.0,drift"), "{lines:?}");
    assert!(lines.contains(&"search,3.1.0,3.1.0,3.0.0 3.1.0,drift mixed"), "{lines:?}");
    assert_eq!(lines.len(), 8);
    let by_accept = bed.get_csv("/dashboards/shop", &bed.platform).await;
    assert_eq!(by_accept.text, csv.text);
}

#[tokio::test]
async fn compare_says_ahead_behind_and_since_when() {
    let Rounds { bed, t1, .. } = two_rounds().await;
    let reply = bed.get("/dashboards/shop/compare?from=stg&to=prod", &bed.platform).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let found = rows_by_service(&reply.body);
    assert_eq!(found["ledger"]["standing"], "ahead");
    assert_eq!(found["ledger"]["basis"], "semanticVersion");
    let time = |v: &Value| v.as_str().unwrap().parse::<Timestamp>().unwrap();
    let ledger = &found["ledger"];
    assert_eq!(
        time(&ledger["since"]),
        time(&ledger["from"]["lastChange"]).max(time(&ledger["to"]["lastChange"])),
        "since the later side last changed"
    );
    assert!(!found.contains_key("orders"), "7.1.0 on both sides");
    assert!(!found.contains_key("checkout"), "same on both sides: left out unless all=true");
    let summary = &reply.body["summary"];
    assert_eq!(summary["ahead"], 1);

    let dev_stg = rows_by_service(
        &bed.get("/dashboards/shop/compare?from=dev&to=stg", &bed.platform).await.body,
    );
    assert_eq!(dev_stg["cart"]["standing"], "behind", "stg waits for 1.3.0");
    assert_eq!(time(&dev_stg["cart"]["since"]), t1, "since dev moved on");
    assert_eq!(dev_stg["orders"]["standing"], "onlyInTo");

    let all = rows_by_service(
        &bed.get("/dashboards/shop/compare?from=stg&to=prod&all=true", &bed.platform).await.body,
    );
    assert_eq!(all["checkout"]["standing"], "same");

    let csv = bed.get("/dashboards/shop/compare?from=stg&to=prod&format=csv", &bed.platform).await;
    assert!(csv.text.starts_with("service,standing,basis,stg,prod,since\r\n"), "{}", csv.text);
    assert!(csv.text.contains("ledger,ahead,semanticVersion,4.9.0,5.0.0,"), "{}", csv.text);

    for (query, parameter) in [("to=prod", "from"), ("from=stg", "to"), ("from=qa&to=prod", "from")]
    {
        let reply = bed.get(&format!("/dashboards/shop/compare?{query}"), &bed.platform).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            reply.body["error"]["message"].as_str().unwrap().starts_with(&format!("{parameter}:"))
        );
    }
}

#[tokio::test]
async fn history_point_in_time_and_diff() {
    let Rounds { bed, t0, t1 } = two_rounds().await;
    // Newest first: the change in dev, then what every snapshot added at t0.
    let cart = bed.all("/history?service=cart", &bed.platform).await;
    assert_eq!(cart.len(), 5, "4 clusters added it, dev changed it: {cart:?}");
    assert_eq!(cart[0]["change"], "changed");
    assert_eq!(
        (cart[0]["fromVersion"].as_str(), cart[0]["toVersion"].as_str()),
        (Some("1.2.0"), Some("1.3.0"))
    );
    assert_eq!(cart[0]["at"].as_str().unwrap().parse::<Timestamp>().unwrap(), t1);
    assert!(cart[1..].iter().all(|e| e["change"] == "added"));

    // Across environments, merged by time, pages of 3 equal one page.
    let everything = bed.get("/history?limit=500", &bed.platform).await.body["items"]
        .as_array()
        .unwrap()
        .clone();
    let paged = bed.all("/history?limit=3", &bed.platform).await;
    assert_eq!(paged, everything);
    let times: Vec<Timestamp> =
        everything.iter().map(|e| e["at"].as_str().unwrap().parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let dev_only =
        bed.all(&format!("/history?cluster={}", bed.cluster("dev-a")), &bed.platform).await;
    assert!(dev_only.iter().all(|e| e["environment"] == "dev") && !dev_only.is_empty());
    let window = bed.all(&format!("/history?since={}&until={}", t1, t1), &bed.platform).await;
    assert_eq!(
        window.len(),
        6,
        "only the changes at t1 (cart in dev, search in 3 clusters, ledger in 2)"
    );
    assert!(window.iter().all(|e| e["change"] == "changed"));
    let csv = bed.get("/history?service=cart&format=csv", &bed.platform).await;
    assert!(csv.text.starts_with(
        "at,change,service,environment,cluster,namespace,kind,name,fromVersion,toVersion\r\n"
    ));
    assert_eq!(csv.text.split("\r\n").filter(|l| !l.is_empty()).count(), 6);
    // A cursor of the right shape but longer than any key: the store would
    // refuse the bound, so it is refused as a cursor.
    let long_cursor = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!("before:2026-01-01T00:00:00.000000Z#{}", "x".repeat(1100)),
    );
    for (query, parameter) in [
        ("since=later".to_owned(), "since"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z".to_owned(), "since"),
        ("service=a%23b".to_owned(), "service"),
        ("cursor=bm9wZQ".to_owned(), "cursor"),
        (format!("cursor={long_cursor}"), "cursor"),
    ] {
        let reply = bed.get(&format!("/history?{query}"), &bed.platform).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}: {}", reply.text);
        assert!(
            reply.body["error"]["message"].as_str().unwrap().starts_with(&format!("{parameter}:"))
        );
    }

    // The matrix as it was between the two rounds, and before anything ran.
    let between = plus(t0, 60);
    let past = bed.get(&format!("/dashboards/shop?at={between}"), &bed.platform).await;
    assert_eq!(past.status, StatusCode::OK, "{}", past.text);
    assert_eq!(past.body["at"].as_str().unwrap().parse::<Timestamp>().unwrap(), between);
    let rows = rows_by_service(&past.body);
    assert_eq!(rows["cart"]["cells"][0]["versions"], serde_json::json!(["1.2.0"]));
    assert!(flag(&rows["cart"], "consistent"), "cart ran 1.2.0 everywhere then");
    assert!(flag(&rows["search"], "consistent"), "and search 3.0.0");
    assert!(flag(&rows["ledger"], "consistent"), "and ledger 4.9.0");
    let before = bed.get(&format!("/dashboards/shop?at={}", plus(t0, -1)), &bed.platform).await;
    assert_eq!(before.body["items"], serde_json::json!([]), "nothing had been seen yet");
    let now = rows_by_service(&bed.get("/dashboards/shop", &bed.platform).await.body);
    assert_eq!(now["cart"]["cells"][0]["versions"], serde_json::json!(["1.3.0"]));

    let diff = bed
        .get(&format!("/dashboards/shop/diff?from={between}&to={}", bed.clock.now()), &bed.platform)
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.text);
    assert_eq!(
        diff.body["items"],
        serde_json::json!([
            {"service": "cart", "changes": [{"environment": "dev", "from": ["1.2.0"], "to": ["1.3.0"]}]},
            {"service": "ledger", "changes": [{"environment": "prod", "from": ["4.9.0"], "to": ["5.0.0"]}]},
            {"service": "search", "changes": [
                {"environment": "dev", "from": ["3.0.0"], "to": ["3.1.0"]},
                {"environment": "stg", "from": ["3.0.0"], "to": ["3.1.0"]},
                {"environment": "prod", "from": ["3.0.0"], "to": ["3.0.0", "3.1.0"]}
            ]}
        ])
    );

    let old = plus(bed.clock.now(), -91 * 86_400);
    for query in [format!("at={old}"), format!("at={}", plus(bed.clock.now(), 3600))] {
        let reply = bed.get(&format!("/dashboards/shop?{query}"), &bed.platform).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.body["error"]["message"].as_str().unwrap().starts_with("at:"));
    }
    let reversed = bed
        .get(&format!("/dashboards/shop/diff?from={}&to={between}", bed.clock.now()), &bed.platform)
        .await;
    assert_eq!(reversed.status, StatusCode::BAD_REQUEST);

    // One service across environments, with its history.
    let service = bed.get("/dashboards/shop/services/cart?limit=2", &bed.platform).await;
    assert_eq!(service.status, StatusCode::OK, "{}", service.text);
    assert_eq!(service.body["row"]["service"], "cart");
    assert_eq!(service.body["history"]["items"][0]["change"], "changed");
    assert!(service.body["history"]["next"].is_string());
    assert_eq!(
        bed.get("/dashboards/shop/services/metrics", &bed.platform).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_dev_team_user_never_sees_prod_in_any_route() {
    let Rounds { bed, t0, .. } = two_rounds().await;
    let between = plus(t0, 60);
    let now = bed.clock.now();
    let prod_names = [bed.cluster("prod-a"), bed.cluster("prod-b"), bed.cluster("stg-a")];
    let routes = [
        "/dashboards".to_owned(),
        "/dashboards/shop".to_owned(),
        "/dashboards/shop?format=csv".to_owned(),
        format!("/dashboards/shop?at={between}"),
        format!("/dashboards/shop/diff?from={between}&to={now}"),
        "/dashboards/shop/services/ledger".to_owned(),
        "/history".to_owned(),
        "/history?service=ledger".to_owned(),
        "/history?format=csv".to_owned(),
    ];
    for route in &routes {
        let reply = bed.get(route, &bed.dev).await;
        assert_eq!(reply.status, StatusCode::OK, "{route}: {}", reply.text);
        for hidden in
            prod_names.iter().map(String::as_str).chain(["\"prod\"", "\"stg\"", ",prod", ",stg"])
        {
            assert!(!reply.text.contains(hidden), "{route} shows {hidden}: {}", reply.text);
        }
    }
    let columns = bed.get("/dashboards/shop", &bed.dev).await.body["dashboard"]["columns"].clone();
    assert_eq!(columns, serde_json::json!(["dev"]));
    let ledger = bed.get("/dashboards/shop/services/ledger", &bed.dev).await.body;
    assert!(
        !flag(&ledger["row"], "promotionOrderBroken"),
        "with prod hidden, dev alone is in order"
    );
    for route in
        ["/history?environment=prod", &format!("/history?cluster={}", bed.cluster("prod-a"))]
    {
        assert_eq!(bed.get(route, &bed.dev).await.status, StatusCode::NOT_FOUND, "{route}");
    }
    let compare = bed.get("/dashboards/shop/compare?from=dev&to=prod", &bed.dev).await;
    assert_eq!(compare.status, StatusCode::BAD_REQUEST, "prod is not a column for them");
    assert!(!compare.text.contains(&bed.cluster("prod-a")));
}

#[tokio::test]
async fn a_service_s_history_reads_only_the_environments_the_caller_may_see() {
    let Rounds { bed, .. } = two_rounds().await;
    // `orders` runs in stg and prod only: every event of it is hidden from dev.
    let route = "/history?service=orders";
    bed.get(route, &bed.platform).await;
    bed.store.take_items();
    let platform = bed.get(route, &bed.platform).await;
    let platform_items = bed.store.take_items();
    assert!(!platform.body["items"].as_array().unwrap().is_empty(), "{}", platform.text);
    assert!(platform_items > 0);
    let dev = bed.get(route, &bed.dev).await;
    // The session's own reads (account, session) are all the request reads.
    let dev_items = bed.store.take_items();
    assert_eq!(dev.body["items"], serde_json::json!([]), "{}", dev.text);
    let session_reads = {
        bed.get("/history?service=no-such-service", &bed.dev).await;
        bed.store.take_items()
    };
    assert!(
        dev_items <= session_reads,
        "dev read {dev_items} items for events it may not see (a request's own: {session_reads})"
    );
}

#[tokio::test]
async fn a_dashboard_costs_at_most_one_query_per_cluster_and_none_when_unchanged() {
    let Rounds { bed, .. } = two_rounds().await;
    bed.store.take_reads();
    let first = bed.get("/dashboards/shop", &bed.admin).await;
    assert_eq!(first.status, StatusCode::OK);
    let (gets, queries) = bed.store.take_reads();
    assert!(queries <= 4, "4 clusters in the columns: {queries} queries");
    // One status per cluster, plus the session, the account and the configuration.
    assert!(gets <= 4 + 3, "{gets} gets");

    let again = bed.get("/dashboards/shop", &bed.admin).await;
    assert_eq!(again.text, first.text);
    assert_eq!(bed.store.take_reads().1, 0, "nothing changed: no query at all");

    bed.clock.advance(Duration::from_secs(60));
    bed.snapshot("stg").await;
    bed.store.take_reads();
    bed.get("/dashboards/shop", &bed.admin).await;
    assert_eq!(bed.store.take_reads().1, 1, "only the cluster with a newer snapshot is read again");
    // (That request may renew the session; the next ones cannot.)
    bed.store.take_writes();

    bed.get("/dashboards/shop/compare?from=stg&to=prod", &bed.admin).await;
    assert_eq!(bed.store.take_reads().1, 0);
    assert_eq!(bed.store.take_writes(), 0, "reading never writes");
}

#[tokio::test]
async fn the_policy_report_judges_every_rule_on_every_column_pair_with_its_reason() {
    let Rounds { bed, t1, .. } = two_rounds().await;
    let reply = bed.get("/dashboards/shop/policies", &bed.platform).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let items = reply.body["items"].as_array().unwrap();
    let line = |service: &str, rule: &str, to: &str| -> &Value {
        items
            .iter()
            .find(|l| l["service"] == service && l["rule"] == rule && l["to"] == to)
            .unwrap_or_else(|| panic!("{service} {rule} {to}: {}", reply.text))
    };
    // 7 services × 3 rules × 2 column pairs.
    assert_eq!(items.len(), 42, "{}", reply.text);
    let ledger = line("ledger", "promotionPath", "prod");
    assert_eq!(ledger["result"], "fail");
    assert_eq!(ledger["reason"], "5.0.0 never ran in stg");
    assert_eq!(ledger["since"], t1.to_string());
    let cart = line("cart", "maxLagReleases", "stg");
    assert_eq!((cart["result"].as_str(), cart["from"].as_str()), (Some("fail"), Some("dev")));
    assert_eq!(cart["reason"], "1 release behind dev (newest 1.3.0) > 0");
    let billing = line("billing", "noDigestDrift", "prod");
    assert_eq!(billing["result"], "fail", "re-tagged in prod: {billing}");
    assert_eq!(line("checkout", "maxLagReleases", "prod")["result"], "pass");
    assert_eq!(line("orders", "noDigestDrift", "stg")["result"], "unknown", "not in dev");
    let summary = &reply.body["summary"];
    let total =
        ["pass", "fail", "unknown"].iter().map(|k| summary[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(total, 42);

    let fails = bed.all("/dashboards/shop/policies?result=fail&limit=2", &bed.platform).await;
    assert_eq!(fails.len() as u64, summary["fail"].as_u64().unwrap(), "paged to the end");
    assert!(fails.iter().all(|l| l["result"] == "fail"));
    let csv = bed.get_csv("/dashboards/shop/policies?result=fail", &bed.platform).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.text.starts_with("service,rule,from,to,result,reason,since\r\n"), "{}", csv.text);
    assert!(csv.text.contains("ledger,promotionPath,stg,prod,fail,5.0.0 never ran in stg,"));

    // The dev team sees the dev column only: no pair, no line about prod.
    let dev = bed.get("/dashboards/shop/policies", &bed.dev).await;
    assert_eq!(dev.status, StatusCode::OK, "{}", dev.text);
    assert!(dev.body["items"].as_array().unwrap().is_empty(), "{}", dev.text);
    let bad = bed.get("/dashboards/shop/policies?result=maybe", &bed.platform).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("result"), "{}", bad.text);
    let missing = bed.get("/dashboards/nope/policies", &bed.platform).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
