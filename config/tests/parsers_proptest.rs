//! Property tests for the parsers that see untrusted or hand-typed input: they
//! never panic, and what they accept round-trips to the value it means.

use converse_config::parse;
use proptest::prelude::*;

proptest! {
    #[test]
    fn no_parser_panics_on_any_input(s in "\\PC{0,64}") {
        let _ = parse::duration(&s);
        let _ = parse::size(&s);
        let _ = parse::boolean(&s);
        let _ = parse::integer::<u16>(&s, 0, 65535);
        let _ = parse::ip_net(&s);
        let _ = parse::http_url(&s);
        let _ = parse::origin(&s);
        let _ = parse::host(&s);
        let _ = parse::list(&s);
    }

    #[test]
    fn sizes_scale_by_their_unit(n in 0u64..1_000_000, unit in prop::sample::select(vec![("", 1u64), ("b", 1), ("kb", 1024), ("KB", 1024), ("mb", 1 << 20), ("Ki", 1024), ("Mi", 1 << 20), ("gb", 1 << 30)])) {
        prop_assert_eq!(parse::size(&format!("{n}{}", unit.0)), Ok(n * unit.1));
    }

    #[test]
    fn bare_numbers_are_milliseconds_as_in_converse_1_3_2(ms in 0u64..10_000_000) {
        prop_assert_eq!(parse::duration(&ms.to_string()), Ok(std::time::Duration::from_millis(ms)));
    }

    #[test]
    fn cidr_lists_keep_every_valid_network(octets in prop::collection::vec((any::<u8>(), any::<u8>(), 0u8..=32), 1..6)) {
        let text = octets.iter().map(|(a, b, len)| format!("10.{a}.{b}.0/{len}")).collect::<Vec<_>>().join(", ");
        let parsed: Vec<_> = parse::list(&text).iter().map(|s| parse::ip_net(s)).collect();
        prop_assert_eq!(parsed.len(), octets.len());
        for (net, (_, _, len)) in parsed.iter().zip(&octets) {
            prop_assert_eq!(net.as_ref().map(|n| n.prefix_len()), Ok(*len));
        }
    }
}
