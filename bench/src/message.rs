//! Benchmark 5: the termination message. For 1, 10 and 50 results (sha256-style digests, the
//! typical step result), the time to encode the record, to fit and encode it (`message::fit` + the
//! JSON the wrapper writes), to encode it with the results compressed, and to decode it (what the
//! next step and the controller do), with the sizes. Each operation is timed on its own (the clock
//! costs ~20 ns through the vDSO); inputs are prepared outside the timed region.

use std::collections::BTreeMap;
use std::hint::black_box;

use baton_contract::message::{self, Fit};
use baton_contract::record::{ExitRecord, Reason};

use crate::util::{now_ns, Rng, Stats};

pub struct Case {
    pub results: usize,
    pub plain_bytes: usize,
    pub compressed_bytes: usize,
    /// How `fit` at 4096 bytes made it fit, and the size then.
    pub fit_4096: (Fit, usize),
    /// The same for a 10-container pod's share (12288 / 10).
    pub fit_1228: (Fit, usize),
    pub encode: Stats,
    pub fit_encode: Stats,
    pub compressed_encode: Stats,
    pub decode_plain: Stats,
    pub decode_compressed: Stats,
}

fn record(n: usize) -> ExitRecord {
    let mut rng = Rng::new(n as u64 + 7);
    let mut r = ExitRecord::new(Some("build-and-push".into()), Reason::Completed, "2026-11-23T16:00:42.123Z".into());
    r.exit_code = Some(0);
    r.started_at = Some("2026-11-23T16:00:41.000Z".into());
    let results: BTreeMap<String, String> = (0..n)
        .map(|i| {
            let hex: String = (0..4).map(|_| format!("{:016x}", rng.next())).collect();
            (format!("image-digest-{i:02}"), format!("sha256:{hex}"))
        })
        .collect();
    r.results = results;
    r
}

/// Times `op` on a fresh `setup()` each sample; what `op` returns is dropped outside the timing.
fn time<T, R>(samples: usize, mut setup: impl FnMut() -> T, mut op: impl FnMut(T) -> R) -> Stats {
    for _ in 0..samples.min(100) {
        black_box(op(setup()));
    }
    let mut v = Vec::with_capacity(samples);
    for _ in 0..samples {
        let input = setup();
        let t = now_ns();
        let out = op(input);
        v.push((now_ns() - t) as f64);
        drop(black_box(out));
    }
    Stats::of(&v)
}

fn compressed(r: &ExitRecord) -> ExitRecord {
    let mut c = r.clone();
    c.results_deflate = Some(message::compress_results(&c.results));
    c.results.clear();
    c
}

pub fn run(samples: usize) -> Vec<Case> {
    [1usize, 10, 50]
        .into_iter()
        .map(|n| {
            let r = record(n);
            let plain_text = r.to_json();
            let packed = compressed(&r);
            let packed_text = packed.to_json();
            let fit_at = |limit: usize| {
                let mut x = r.clone();
                let how = message::fit(&mut x, limit);
                (how, x.to_json().len())
            };
            Case {
                results: n,
                plain_bytes: plain_text.len(),
                compressed_bytes: packed_text.len(),
                fit_4096: fit_at(4096),
                fit_1228: fit_at(1228),
                encode: time(samples, || &r, |x| black_box(x).to_json()),
                fit_encode: time(samples, || r.clone(), |mut x| {
                    black_box(message::fit(black_box(&mut x), 4096));
                    let text = x.to_json();
                    (x, text)
                }),
                compressed_encode: time(samples, || &r, |x| {
                    let c = compressed(black_box(x));
                    let text = c.to_json();
                    (c, text)
                }),
                decode_plain: time(samples, || plain_text.as_str(), |t| message::decode(black_box(t)).ok()),
                decode_compressed: time(samples, || packed_text.as_str(), |t| message::decode(black_box(t)).ok()),
            }
        })
        .collect()
}
