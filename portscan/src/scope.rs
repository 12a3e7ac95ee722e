//! What a scan may be aimed at without saying so twice (issue #16, "aimed by accident"):
//! a typo in a prefix (`0.0.0.0/0`, `/1` for `/31`) must not send probes to the whole
//! internet, and a range never means the addresses no host answers from (this network,
//! multicast, the reserved and broadcast block), which only cost time and alarm others.

use std::net::IpAddr;

use crate::target_spec::TargetSpec;

/// More public addresses than this (a /8's) in one run needs an exclusion list or
/// `--i-mean-it`, as masscan asks for an exclusion list.
pub const MOST_PUBLIC: u128 = 1 << 24;

/// IPv4 blocks that are not the public internet (RFC 6890's special-purpose registry,
/// the larger entries), as (first, last) numbers.
const IPV4_NOT_PUBLIC: &[(u32, u32)] = &[
    (0x0000_0000, 0x00ff_ffff), // 0.0.0.0/8, "this network"
    (0x0a00_0000, 0x0aff_ffff), // 10.0.0.0/8
    (0x6440_0000, 0x647f_ffff), // 100.64.0.0/10, shared address space
    (0x7f00_0000, 0x7fff_ffff), // 127.0.0.0/8, loopback
    (0xa9fe_0000, 0xa9fe_ffff), // 169.254.0.0/16, link local
    (0xac10_0000, 0xac1f_ffff), // 172.16.0.0/12
    (0xc0a8_0000, 0xc0a8_ffff), // 192.168.0.0/16
    (0xc612_0000, 0xc613_ffff), // 198.18.0.0/15, benchmarking
    (0xe000_0000, 0xffff_ffff), // 224.0.0.0/4 multicast, 240.0.0.0/4 reserved, broadcast
];

/// IPv6: the public internet is 2000::/3, less the documentation block 2001:db8::/32.
const IPV6_GLOBAL: (u128, u128) = (0x2000 << 112, (0x4000 << 112) - 1);
const IPV6_DOCUMENTATION: (u128, u128) = (0x2001_0db8 << 96, ((0x2001_0db8 + 1) << 96) - 1);

/// Whether a range (a block, a span, octet ranges) leaves `address` out: this network
/// (0.0.0.0/8), multicast (224.0.0.0/4, ff00::/8), the reserved block and the broadcast
/// address (240.0.0.0/4), and `::`. Named one by one, such an address is scanned.
pub fn never_meant(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [first, ..] = v4.octets();
            first == 0 || first >= 224
        }
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified(),
    }
}

/// How many public addresses `spec` stands for (0 for a name: it is one host).
pub fn public_count(spec: &TargetSpec) -> u128 {
    match spec {
        TargetSpec::Name(_) => 0,
        TargetSpec::Octets(octets) => {
            // Every special block above is aligned on a /16 or wider, so the first two
            // octets decide; the rest multiply.
            let rest = octets[2..]
                .iter()
                .map(|&(lo, hi)| u128::from(hi - lo) + 1)
                .product::<u128>();
            let (a, b) = (octets[0], octets[1]);
            let public_prefixes = (a.0..=a.1)
                .flat_map(|first| (b.0..=b.1).map(move |second| (first, second)))
                .filter(|&(first, second)| {
                    let start = u32::from_be_bytes([first, second, 0, 0]);
                    public_v4(start, start | 0xffff) > 0
                })
                .count();
            public_prefixes as u128 * rest
        }
        spec => {
            let (Some(first), Some(count)) = (spec.address(0), spec.count()) else {
                return 0;
            };
            match first {
                IpAddr::V4(v4) => {
                    let start = u32::from(v4);
                    let last = start + u32::try_from(count - 1).expect("IPv4 counts fit");
                    u128::from(public_v4(start, last))
                }
                IpAddr::V6(v6) => {
                    let start = u128::from(v6);
                    let last = start + (count - 1);
                    overlap((start, last), IPV6_GLOBAL) - overlap((start, last), IPV6_DOCUMENTATION)
                }
            }
        }
    }
}

/// The public addresses from `first` to `last`.
fn public_v4(first: u32, last: u32) -> u64 {
    let all = u64::from(last - first) + 1;
    let special: u64 = IPV4_NOT_PUBLIC
        .iter()
        .map(|&(lo, hi)| {
            let (lo, hi) = (lo.max(first), hi.min(last));
            if lo > hi { 0 } else { u64::from(hi - lo) + 1 }
        })
        .sum();
    all - special
}

/// How many numbers two inclusive ranges share.
fn overlap(a: (u128, u128), b: (u128, u128)) -> u128 {
    let (lo, hi) = (a.0.max(b.0), a.1.min(b.1));
    if lo > hi { 0 } else { hi - lo + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> u128 {
        public_count(&TargetSpec::parse(text).unwrap())
    }

    #[test]
    fn public_addresses_are_counted_outside_the_special_blocks() {
        assert_eq!(public("198.18.0.0/15"), 0);
        assert_eq!(public("127.0.0.1"), 0);
        assert_eq!(public("10.0.0.0/8"), 0);
        assert_eq!(public("8.8.8.0/24"), 256);
        assert_eq!(public("11.0.0.0/8"), 1 << 24);
        // The whole space less 10/8, 127/8, 0/8, 100.64/10, 169.254/16, 172.16/12,
        // 192.168/16, 198.18/15 and 224.0.0.0-255.255.255.255.
        let special: u128 = (3 << 24)
            + (1 << 22)
            + (1 << 16)
            + (1 << 20)
            + (1 << 16)
            + (1 << 17)
            + (1 << 28)
            + (1 << 28);
        assert_eq!(public("0.0.0.0/0"), (1 << 32) - special);
        assert_eq!(public("*.*.*.*"), (1 << 32) - special);
        assert_eq!(public("10.*.*.*"), 0);
        assert_eq!(public("2001:db8::/32"), 0);
        assert_eq!(public("2001:db9::/64"), 1 << 64);
        assert_eq!(public("fd00::/8"), 0);
        assert_eq!(public("localhost"), 0);
    }

    #[test]
    fn ranges_leave_out_what_no_host_answers_from() {
        for address in [
            "0.0.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "ff02::1",
            "::",
        ] {
            assert!(never_meant(address.parse().unwrap()), "{address}");
        }
        for address in [
            "1.0.0.0",
            "198.18.0.255",
            "223.255.255.255",
            "2001:db8::1",
            "::1",
        ] {
            assert!(!never_meant(address.parse().unwrap()), "{address}");
        }
    }
}
