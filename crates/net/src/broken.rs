//! The switch every node's configuration has for the simulation's broken
//! variants (deliberately buggy behaviours that prove the simulation catches
//! real bugs). It lives here, at the bottom of the crate graph, so that the
//! client proxy, edge and relay share one definition.

/// Adds `fn broken(&self, b) -> bool` to a configuration type with a
/// `broken: Option<B>` field that exists only under the calling crate's
/// `broken-variants` feature: true when the simulation asked for `b`, and a
/// constant `false` (the broken paths compiled out) in any other build.
/// The `cfg` is read in the crate that invokes the macro.
#[macro_export]
macro_rules! broken_switch {
    ($config:ty, $broken:ty) => {
        impl $config {
            /// Whether the simulation asked for broken variant `b`: always
            /// false in a build without the `broken-variants` feature.
            #[inline]
            pub(crate) fn broken(&self, b: $broken) -> bool {
                #[cfg(feature = "broken-variants")]
                {
                    self.broken == Some(b)
                }
                #[cfg(not(feature = "broken-variants"))]
                {
                    let _ = b;
                    false
                }
            }
        }
    };
}
