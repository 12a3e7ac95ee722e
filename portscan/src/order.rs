//! The order probes go out in: a seeded pseudo-random permutation of every (host, port)
//! index, computed one position at a time in O(1) memory, so that a firewall sees no sweep,
//! no host gets all its probes at once, and `--shard K/N` can split one scan between
//! machines by position (`K-1`, `K-1+N`, ...) with nothing to coordinate but the seed.
//!
//! The permutation is a balanced Feistel network over the smallest even-bit power of two
//! at least as large as the index space, walking cycles until the value falls inside it
//! (Black and Rogaway, "Ciphers with Arbitrary Finite Domains", 2002).
//!
//! Large scans are permuted a group of hosts at a time, as nmap scans host groups: the
//! pairs of the first group come first, in a random order, then the next group's. Each
//! host's state can then be dropped once its group is done, so a /8 costs the memory of one
//! group, not of sixteen million hosts.

/// Which part of the permutation this run takes: positions `index`, `index + count`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based.
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N`, 1 <= K <= N.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not K/N with 1 <= K <= N");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let k: u64 = k.parse().map_err(|_| bad())?;
        let n: u64 = n.parse().map_err(|_| bad())?;
        if k == 0 || k > n {
            return Err(bad());
        }
        Ok(Self {
            index: k - 1,
            count: n,
        })
    }
}

/// A permutation of `0..len` that keeps each run of `group` indices in place and shuffles
/// within it.
#[derive(Debug, Clone)]
pub struct Permutation {
    len: u64,
    group: u64,
    /// The ciphers of a whole group and of the shorter last one; `None`: the identity
    /// (`--sequential`).
    ciphers: Option<(Feistel, Feistel)>,
}

impl Permutation {
    /// `group`: how many indices are shuffled together (at least 1); one host group's pairs.
    pub fn new(len: u64, group: u64, seed: Option<u64>) -> Self {
        let group = group.clamp(1, len.max(1));
        let last = match len % group {
            0 => group,
            rest => rest,
        };
        Self {
            len,
            group,
            ciphers: seed.map(|seed| (Feistel::new(group, seed), Feistel::new(last, seed))),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether `shard` takes `position`.
    pub fn takes(shard: Shard, position: u64) -> bool {
        position % shard.count == shard.index
    }

    /// The position of `index`, for `index < len`: the inverse of [`at`](Self::at).
    pub fn position_of(&self, index: u64) -> u64 {
        debug_assert!(index < self.len);
        let Some((whole, last)) = &self.ciphers else {
            return index;
        };
        let start = index - index % self.group;
        let size = self.group.min(self.len - start);
        let cipher = if size == self.group { whole } else { last };
        // Walking the cycle backwards from the index finds the position that walked to it.
        let mut value = index - start;
        loop {
            value = cipher.decrypt(value);
            if value < size {
                return start + value;
            }
        }
    }

    /// The index at `position`, for `position < len`.
    pub fn at(&self, position: u64) -> u64 {
        debug_assert!(position < self.len);
        let Some((whole, last)) = &self.ciphers else {
            return position;
        };
        let start = position - position % self.group;
        let size = self.group.min(self.len - start);
        let cipher = if size == self.group { whole } else { last };
        let mut value = position - start;
        loop {
            value = cipher.encrypt(value);
            if value < size {
                return start + value;
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Feistel {
    half_bits: u32,
    mask: u64,
    keys: [u64; 4],
}

impl Feistel {
    fn new(len: u64, seed: u64) -> Self {
        let bits = 64 - len.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut state = seed;
        let keys = std::array::from_fn(|_| splitmix64(&mut state));
        Self {
            half_bits,
            mask: (1u64 << half_bits) - 1,
            keys,
        }
    }

    fn encrypt(&self, value: u64) -> u64 {
        let mut left = value >> self.half_bits;
        let mut right = value & self.mask;
        for key in self.keys {
            let mut mixed = right ^ key;
            let next = left ^ (splitmix64(&mut mixed) & self.mask);
            left = right;
            right = next;
        }
        (left << self.half_bits) | right
    }

    /// The inverse of [`encrypt`](Self::encrypt): its rounds undone in reverse order.
    fn decrypt(&self, value: u64) -> u64 {
        let mut left = value >> self.half_bits;
        let mut right = value & self.mask;
        for key in self.keys.iter().rev() {
            let mut mixed = left ^ key;
            let previous = right ^ (splitmix64(&mut mixed) & self.mask);
            right = left;
            left = previous;
        }
        (left << self.half_bits) | right
    }
}

/// A fast, well-mixing 64-bit step (Steele, Lea and Flood, 2014).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(len: u64, seed: Option<u64>) -> Vec<u64> {
        grouped(len, len, seed)
    }

    fn grouped(len: u64, group: u64, seed: Option<u64>) -> Vec<u64> {
        let permutation = Permutation::new(len, group, seed);
        (0..len).map(|p| permutation.at(p)).collect()
    }

    #[test]
    fn every_index_comes_exactly_once() {
        for len in [1, 2, 3, 7, 64, 1000, 65_535, 100_001] {
            let mut seen = all(len, Some(42));
            seen.sort_unstable();
            assert!(seen.iter().copied().eq(0..len), "len {len}");
        }
    }

    #[test]
    fn the_seed_decides_the_order() {
        assert_eq!(all(1000, Some(1)), all(1000, Some(1)));
        assert_ne!(all(1000, Some(1)), all(1000, Some(2)));
        assert_ne!(all(1000, Some(1)), (0..1000).collect::<Vec<_>>());
        assert_eq!(all(1000, None), (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn huge_spaces_cost_nothing() {
        let permutation = Permutation::new(1 << 60, 1 << 40, Some(7));
        assert!(permutation.at((1 << 60) - 1) < 1 << 60);
        assert_eq!(permutation.len(), 1 << 60);
    }

    #[test]
    fn groups_come_one_after_another_each_shuffled() {
        for (len, group) in [(1000, 100), (1003, 100), (7, 3), (10, 1), (5, 5), (5, 9)] {
            let order = grouped(len, group, Some(9));
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert!(sorted.iter().copied().eq(0..len), "{len}/{group}");
            for (position, index) in (0..len).zip(&order) {
                assert_eq!(
                    position / group,
                    index / group,
                    "{len}/{group} at {position}"
                );
            }
        }
        let order = grouped(1000, 100, Some(9));
        assert_ne!(order[..100], (0..100).collect::<Vec<_>>()[..]);
        assert_ne!(order[900..], (900..1000).collect::<Vec<_>>()[..]);
        assert_eq!(grouped(1000, 100, None), (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn position_of_undoes_at() {
        for (len, group, seed) in [
            (1, 1, Some(3)),
            (1000, 1000, Some(1)),
            (1000, 64, Some(2)),
            (4097, 300, Some(9)),
            (500, 500, None),
        ] {
            let order = Permutation::new(len, group, seed);
            for position in 0..len {
                assert_eq!(
                    order.position_of(order.at(position)),
                    position,
                    "{len} {group}"
                );
            }
        }
        let huge = Permutation::new(u64::MAX, 1 << 20, Some(5));
        for position in [0, 77, 1 << 40, u64::MAX - 1] {
            assert_eq!(huge.position_of(huge.at(position)), position);
        }
    }

    #[test]
    fn shards_parse() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(Shard::parse("3/3"), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "1", "a/b", "1/0", "/3", "-1/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
