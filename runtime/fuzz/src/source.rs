//! Choices from raw bytes: what the fuzzer (or a proptest byte vector) hands
//! the generators. An exhausted source reads zeros, and every generator treats
//! a zero as its smallest, most ordinary choice, so any input ends quickly.

pub struct Source<'a> {
    data: &'a [u8],
}

impl<'a> Source<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((first, rest)) => {
                self.data = rest;
                *first
            }
            None => 0,
        }
    }

    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// Little-endian, zero-padded when the source runs out.
    pub fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        bytes.iter_mut().for_each(|b| *b = self.byte());
        u64::from_le_bytes(bytes)
    }

    pub fn u32(&mut self) -> u32 {
        let mut bytes = [0u8; 4];
        bytes.iter_mut().for_each(|b| *b = self.byte());
        u32::from_le_bytes(bytes)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        match n {
            0 => 0,
            1..=256 => usize::from(self.byte()) % n,
            _ => self.u32() as usize % n,
        }
    }

    /// One of `items`; the first when the source is exhausted.
    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        &items[self.below(items.len())]
    }

    /// Up to `n` raw bytes (fewer when the source runs out).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }
}
