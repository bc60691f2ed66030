//! zstd compression contexts kept between frames, for any channel's next
//! frame.
//!
//! A streaming context is a workspace of a few hundred kilobytes (a frame
//! sized for 64 KiB) to 15 MB (level 9, sized for the level's largest
//! input). A fresh one comes from the allocator as pages the kernel maps
//! and zeroes on first touch, zstd zeroes its tables once more before the
//! first byte, and freeing it unmaps them. An edge opens a frame for every
//! session that streams (each session's prefetched mailbox, every
//! download), so while sessions opened (bench figure 5, 9,900 sessions)
//! making and freeing contexts was about a fifth of the edge's CPU: page
//! faults, `memset`, `munmap`.
//!
//! A context whose frame ended comes back here and is reset with its
//! parameters and any dictionary; the next frame of any channel of the same
//! node takes it. zstd then reuses the workspace where it fits, and its
//! match tables need no zeroing: their indices continue past those of the
//! last frame, which the new frame's window cannot reach. Nothing of one
//! frame can show in another's output: a frame's output is a function of its
//! own input, parameters and dictionary (or primer), which are all set
//! afresh. What it costs: the contexts kept, at most [`MAX_KEPT`] of at most
//! [`MAX_KEPT_BYTES`] each; a larger one (a level-9 frame told nothing about
//! its size) is freed as before.
//!
//! Shared by a node's channels through their `ChannelConfig` (a clone shares
//! the pool); in simulation each node builds its own, so seeds never share
//! one.

use std::fmt;
use std::sync::{Arc, Mutex};

use zstd::zstd_safe::{CCtx, ResetDirective};

/// Contexts kept at most: about the frames a busy edge opens at once on two
/// cores, so that a burst of session opens draws from the pool.
pub const MAX_KEPT: usize = 16;

/// The largest context kept: one sized for a few megabytes of input at the
/// bulk level. A larger one is rare (a level-9 frame opened without an
/// expectation) and is freed, so the pool holds at most 64 MiB.
pub const MAX_KEPT_BYTES: usize = 4 << 20;

/// What a context was set up for, which decides the size of its workspace.
/// A context is taken only for the shape it had: one of another shape would
/// be grown (a new workspace, as costly as a new context) or be larger than
/// needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) level: i32,
    /// The size the frame was set up for (`Compressor::expect`), rounded up
    /// to a power of two; `None`: the level's largest input.
    pub(crate) size: Option<u64>,
    /// A whole frame of a unit (sized for it by zstd), not a streaming one.
    pub(crate) whole: bool,
}

impl Shape {
    pub(crate) fn streaming(level: i32, size: Option<u64>) -> Self {
        Shape {
            level,
            size: size.map(u64::next_power_of_two),
            whole: false,
        }
    }

    pub(crate) fn whole(level: i32) -> Self {
        Shape {
            level,
            size: None,
            whole: true,
        }
    }
}

/// A node's spare compression contexts; cheap to clone, clones share them.
#[derive(Clone, Default)]
pub struct ContextPool {
    /// Oldest first.
    kept: Arc<Mutex<Vec<(Shape, CCtx<'static>)>>>,
}

impl fmt::Debug for ContextPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextPool")
            .field("kept", &self.kept().len())
            .finish()
    }
}

impl ContextPool {
    /// A context with zstd's default parameters and no dictionary, for a
    /// frame of `shape`: the newest kept one of that shape, else a new one.
    pub(crate) fn take(&self, shape: Shape) -> CCtx<'static> {
        let found = {
            let mut kept = self.kept();
            let i = kept.iter().rposition(|(s, _)| *s == shape);
            i.map(|i| kept.remove(i).1)
        };
        // Made (and below, freed) outside the lock.
        found.unwrap_or_else(CCtx::create)
    }

    /// Takes `cctx` back for a later frame of `shape` (its frame ended, or
    /// was abandoned part-way); frees it if it is too large or cannot be
    /// reset, and the oldest kept one if the pool is full.
    pub(crate) fn give_back(&self, shape: Shape, mut cctx: CCtx<'static>) {
        if cctx.sizeof() > MAX_KEPT_BYTES
            || cctx.reset(ResetDirective::SessionAndParameters).is_err()
        {
            return;
        }
        let mut kept = self.kept();
        let oldest = (kept.len() == MAX_KEPT).then(|| kept.remove(0));
        kept.push((shape, cctx));
        drop(kept);
        drop(oldest);
    }

    /// How many contexts are kept now.
    pub fn kept_now(&self) -> usize {
        self.kept().len()
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Vec<(Shape, CCtx<'static>)>> {
        // A panic elsewhere cannot leave the list half-changed.
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::compress::{Compressor, Decompressor};
    use crate::config::ChannelConfig;

    /// How a frame is set up: its level, what the sender expects, and a
    /// trained dictionary.
    #[derive(Clone, Copy, Debug)]
    struct Setup {
        level: i32,
        expect: Option<u64>,
        dictionary: bool,
    }

    fn config(setup: Setup, contexts: &ContextPool) -> ChannelConfig {
        ChannelConfig {
            // Every unit in the streaming frame.
            first_whole: 0,
            dictionary: setup
                .dictionary
                .then(|| Arc::new(b"Subject: Received: From: To: Date: ".repeat(30))),
            contexts: contexts.clone(),
            ..ChannelConfig::default()
        }
    }

    /// Mail-like units, different for each `seed`.
    fn units(seed: usize) -> Vec<Vec<u8>> {
        (0..12)
            .map(|i| {
                format!(
                    "Received: from mx{seed}.example.org\r\nSubject: report {i} of {seed}\r\n\r\n{}",
                    format!("line {} of the figures for region {seed}\r\n", i * 7).repeat(40 + i)
                )
                .into_bytes()
            })
            .collect()
    }

    /// One frame of `units`, ended; its bytes, unit by unit. Checks that it
    /// decodes.
    fn frame(setup: Setup, contexts: &ContextPool, units: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let cfg = config(setup, contexts);
        let (mut c, mut d) = (Compressor::new(&cfg), Decompressor::new(&cfg));
        c.set_level(setup.level);
        if let Some(bytes) = setup.expect {
            c.expect(bytes);
        }
        let mut out = Vec::new();
        for u in units {
            let z = c.compress(u).unwrap();
            assert_eq!(&d.decompress(&z, 1 << 20).unwrap(), u);
            out.push(z);
        }
        let end = c.finish().unwrap();
        assert_eq!(d.decompress(&end, 1 << 20).unwrap(), b"");
        out.push(end);
        out
    }

    #[test]
    fn a_frame_on_a_context_given_back_is_byte_for_byte_a_fresh_ones() {
        let pool = ContextPool::default();
        // (level, expected size, dictionary). A dictionary (or a resumed
        // channel's primer, which zstd loads as one) must not stay with the
        // context for the next frame, the fourth.
        let setups = [
            (9, Some(40_000), false),
            (3, Some(200_000), false),
            (3, Some(40_000), true),
            (3, Some(40_000), false),
            (9, Some(40_000), false),
            (-5, None, false),
            (3, None, false),
        ]
        .map(|(level, expect, dictionary)| Setup {
            level,
            expect,
            dictionary,
        });
        // One context per shape: the fourth frame takes the third's, the
        // fifth the first's, and every frame of the second round one of the
        // first round's.
        let kept = [1, 2, 3, 3, 3, 4, 5];
        for round in 0..2 {
            for (i, setup) in setups.into_iter().enumerate() {
                let mail = units(i + round);
                let reused = frame(setup, &pool, &mail);
                let shapes = if round == 0 { kept[i] } else { 5 };
                assert_eq!(pool.kept_now(), shapes, "{setup:?}: the context came back");
                // The same frame on a context of its own.
                let fresh = frame(setup, &ContextPool::default(), &mail);
                assert_eq!(reused, fresh, "{setup:?}");
            }
        }
    }

    #[test]
    fn a_whole_frame_on_a_context_given_back_is_byte_for_byte_a_fresh_ones() {
        let pool = ContextPool::default();
        let cfg = ChannelConfig {
            contexts: pool.clone(),
            ..ChannelConfig::default()
        };
        let mut d = Decompressor::new(&cfg);
        for (i, unit) in units(7).iter().take(4).enumerate() {
            let mut c = Compressor::new(&cfg);
            c.set_level([3, 9][i % 2]);
            let z = c.compress(unit).unwrap();
            assert_eq!(c.open_level(), None, "a whole frame");
            assert_eq!(pool.kept_now(), 1 + i.min(1), "one context per level");
            assert_eq!(&d.decompress(&z, 1 << 20).unwrap(), unit);
            let fresh = ChannelConfig::default();
            let mut f = Compressor::new(&fresh);
            f.set_level([3, 9][i % 2]);
            assert_eq!(z, f.compress(unit).unwrap());
        }
    }

    #[test]
    fn a_channel_dropped_or_cut_with_a_frame_open_gives_its_context_back() {
        let pool = ContextPool::default();
        let setup = Setup {
            level: 3,
            expect: Some(40_000),
            dictionary: false,
        };
        let cfg = config(setup, &pool);
        let mut cut = Compressor::new(&cfg);
        cut.compress(&units(1)[0]).unwrap();
        let mut dropped = Compressor::new(&cfg);
        dropped.compress(&units(2)[0]).unwrap();
        assert_eq!(pool.kept_now(), 0, "both frames hold a context");
        cut.discard();
        drop(dropped);
        assert_eq!(pool.kept_now(), 2);
        // What is kept is bounded, in number and in size.
        let big = ContextPool::default();
        for _ in 0..MAX_KEPT + 3 {
            big.give_back(Shape::whole(3), CCtx::create());
        }
        assert_eq!(big.kept_now(), MAX_KEPT);
        let huge = ContextPool::default();
        let level_9_untold = Setup {
            level: 9,
            expect: None,
            dictionary: false,
        };
        frame(level_9_untold, &huge, &units(3));
        assert_eq!(huge.kept_now(), 0, "a context over MAX_KEPT_BYTES is freed");
    }
}
