//! The turmoil TCP facts the harness relies on (documented in `kube_chaos_harness::net`),
//! pinned so that a turmoil upgrade that changes them fails here first.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, WatchEvent, WatchParams};
use kube::ResourceExt;
use kube_chaos_harness::net::replica_host;

use super::*;

fn name(e: WatchEvent<ConfigMap>) -> String {
    match e {
        WatchEvent::Added(o) => o.name_any(),
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[test]
fn a_partition_that_drops_a_segment_leaves_the_stream_silent_forever_even_after_repair() {
    // turmoil drops segments sent across a partition and never retransmits; the receiver
    // buffers every later segment waiting for the lost one. So one event sent during a
    // partition kills the stream silently: nothing more arrives, not even the server's FIN at
    // the watch deadline. This is the "watch that silently dies".
    run(SimBuilder::new(60), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let mut w = api
            .watch(&WatchParams::default().timeout(60).disable_bookmarks(), "0")
            .await?
            .boxed();
        put(&server, "before");
        assert_eq!(name(w.try_next().await?.expect("open")), "before");
        turmoil::partition("client", replica_host(0));
        put(&server, "lost");
        tokio::time::sleep(secs(1)).await;
        turmoil::repair("client", replica_host(0));
        put(&server, "after-repair");
        let r = tokio::time::timeout(secs(300), w.next()).await;
        assert!(
            r.is_err(),
            "nothing arrives, not even EOF at the 60 s deadline: {r:?}"
        );
        Ok(())
    });
}

#[test]
fn a_partition_with_no_traffic_leaves_the_connection_intact() {
    // No segment lost, nothing to recover: after repair the same stream keeps working.
    run(SimBuilder::new(61), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let mut w = api
            .watch(
                &WatchParams::default().timeout(600).disable_bookmarks(),
                "0",
            )
            .await?
            .boxed();
        turmoil::partition("client", replica_host(0));
        tokio::time::sleep(secs(30)).await;
        turmoil::repair("client", replica_host(0));
        put(&server, "after");
        assert_eq!(name(w.try_next().await?.expect("open")), "after");
        Ok(())
    });
}

#[test]
fn hold_delays_segments_and_release_delivers_them_in_order() {
    // A held link queues segments instead of dropping them.
    run(SimBuilder::new(62), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let mut w = api
            .watch(
                &WatchParams::default().timeout(600).disable_bookmarks(),
                "0",
            )
            .await?
            .boxed();
        turmoil::hold("client", replica_host(0));
        put(&server, "a");
        put(&server, "b");
        assert!(
            tokio::time::timeout(secs(10), w.try_next()).await.is_err(),
            "held"
        );
        turmoil::release("client", replica_host(0));
        assert_eq!(name(w.try_next().await?.expect("open")), "a");
        assert_eq!(name(w.try_next().await?.expect("open")), "b");
        Ok(())
    });
}

#[test]
fn connects_across_a_partition_are_refused_and_across_a_hold_or_to_a_crashed_host_hang() {
    // A SYN dropped by a partition drops its answer channel, so turmoil refuses at once; a
    // held SYN, or one sent to a crashed host, waits: that is why the connector has a timeout.
    let (mut sim, _server) = SimBuilder::new(63).build().expect("valid");
    let addr = (replica_host(0), kube_chaos_harness::net::APISERVER_PORT);
    sim.client("client", async move {
        let connect = || turmoil::net::TcpStream::connect(addr.clone());
        tokio::time::sleep(secs(1)).await; // the replica is listening
        turmoil::partition("client", replica_host(0));
        let e = connect().await.expect_err("refused across a partition");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        turmoil::repair("client", replica_host(0));
        turmoil::hold("client", replica_host(0));
        assert!(
            tokio::time::timeout(secs(60), connect()).await.is_err(),
            "hangs across a hold"
        );
        turmoil::release("client", replica_host(0));
        connect().await.expect("connects once released");
        // The driver crashes the replica at 100 s and restarts it at 200 s.
        tokio::time::sleep_until(tokio::time::Instant::now() + secs(60)).await;
        let r = tokio::time::timeout(secs(30), connect()).await;
        assert!(r.is_err(), "hangs while crashed: {r:?}");
        tokio::time::sleep(secs(60)).await;
        connect().await.expect("connects after the restart");
        Ok(())
    });
    while sim.elapsed() < secs(100) {
        sim.step().expect("steps");
    }
    sim.crash(replica_host(0));
    while sim.elapsed() < secs(200) {
        sim.step().expect("steps");
    }
    sim.bounce(replica_host(0));
    sim.run().expect("ran");
}
