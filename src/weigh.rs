//! How many bytes an item weighs, for the `max_bytes` trigger.

use std::sync::Arc;

/// The size of an item in bytes, for `max_bytes` and `batch_bytes`.
///
/// Byte-like types report their length. Any other type can opt in with an
/// empty impl, which reports `None`: such items count for `max_size` only.
///
/// ```
/// use spillway::Weigh;
/// struct Reading { celsius: f32 }
/// impl Weigh for Reading {} // no byte trigger for these
/// assert_eq!(Reading { celsius: 1.0 }.weight(), None);
/// assert_eq!(b"abc".to_vec().weight(), Some(3));
/// ```
pub trait Weigh {
    /// The item's weight in bytes, or `None` when it has none.
    fn weight(&self) -> Option<usize> {
        None
    }
}

macro_rules! weigh_by_len {
    ($($t:ty),*) => {$(
        impl Weigh for $t {
            fn weight(&self) -> Option<usize> {
                Some(self.len())
            }
        }
    )*};
}
weigh_by_len!(
    Vec<u8>,
    Box<[u8]>,
    Arc<[u8]>,
    String,
    Box<str>,
    Arc<str>,
    &'static [u8],
    &'static str
);

macro_rules! weigh_by_size {
    ($($t:ty),*) => {$(
        impl Weigh for $t {
            fn weight(&self) -> Option<usize> {
                Some(core::mem::size_of::<$t>())
            }
        }
    )*};
}
weigh_by_size!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

macro_rules! weigh_tuple {
    ($($name:ident),+) => {
        /// The sum of the parts that have a weight; `None` if none has.
        impl<$($name: Weigh),+> Weigh for ($($name,)+) {
            #[allow(non_snake_case)]
            fn weight(&self) -> Option<usize> {
                let ($($name,)+) = self;
                let parts = [$($name.weight()),+];
                parts.iter().flatten().copied().reduce(|a, b| a + b)
            }
        }
    };
}
weigh_tuple!(A);
weigh_tuple!(A, B);
weigh_tuple!(A, B, C);
weigh_tuple!(A, B, C, D);
