//! Property tests over whole sessions: any chunking of every stream gives the same responses,
//! and the fuzzing invariants hold for arbitrary scripts and for the committed fuzz seeds.

#[path = "sessions_support.rs"]
mod support;

use proptest::prelude::*;
use rpch_framing::channel::{ClientConfig, ClientState, ProxyConfig, fuzzing};
use support::{Chunker, Net};

fn net(merged: bool, chunker: Chunker, window: u32) -> Net {
    let mut proxy = ProxyConfig::default();
    proxy.receive_window = window;
    let mut client = ClientConfig::default();
    client.receive_window = window;
    let net = Net::new(proxy, client, window, merged, chunker);
    assert_eq!(net.client.state(), ClientState::Opened);
    net
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Random chunk sizes on every stream (client ↔ proxies ↔ server) change nothing: all
    /// responses arrive once, in order, with the same bytes as with whole-buffer delivery.
    #[test]
    fn chunking_invariance(
        seed in any::<u64>(),
        max_chunk in 1usize..400,
        merged in any::<bool>(),
        calls in 1u32..25,
        len in 0usize..6000,
        window in prop::sample::select(vec![8192u32, 16384, 65536]),
    ) {
        let mut chunked = net(merged, Chunker::random(seed, max_chunk), window);
        chunked.call_many(1, calls, len);
        chunked.assert_responses(1, calls, len);
        let mut whole = net(merged, Chunker::whole(), window);
        whole.call_many(1, calls, len);
        prop_assert_eq!(&chunked.received, &whole.received);
    }

    /// Arbitrary scripts never panic the proxy machines nor grow their buffers past the bound.
    #[test]
    fn proxy_session_invariants(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        fuzzing::proxy_session(&data);
        fuzzing::client_out_channel(&data);
    }
}

#[test]
fn fuzz_seeds_hold_the_invariants() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/corpus/rpch_proxy_session"
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        // Published crates have no fuzz directory.
        return;
    };
    for entry in entries {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        fuzzing::proxy_session(&data);
        fuzzing::client_out_channel(&data);
    }
}
