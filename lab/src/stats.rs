//! Statistics for nested samples. pyperf runs several worker processes per cell and takes
//! several values in each; values inside one process are correlated (same address-space layout,
//! same hash seed), so every resampling here draws whole processes, never single values.
//!
//! - per cell: mean, median, standard deviation, and a bootstrap interval of the mean;
//! - per comparison: ratio = baseline mean / candidate mean (above 1: the candidate is faster)
//!   with a bootstrap interval and a two-sided bootstrap p-value against "no difference";
//! - a verdict against a target (`holds`, `fails`, `inconclusive` when the interval straddles it);
//! - the geometric mean of ratios across benchmarks, resampled jointly.
//!
//! A percentile bootstrap of a mean over few processes is too narrow: it takes the spread of
//! the resampled means for the sampling spread of the mean (short by sqrt((n-1)/n)) and uses
//! normal tails where a t distribution with n-1 degrees of freedom belongs. An A/A run (one
//! build against itself, 8 benchmarks, 6 processes each) gave three verdicts of 8 outside their
//! interval that way. Every interval here is therefore the *expanded* percentile interval
//! (Hesterberg, "What teachers should know about the bootstrap", 2015): the quantiles are
//! taken at the level whose normal quantile is sqrt(n/(n-1)) times the t quantile with n-1
//! degrees of freedom, n the number of processes (the fewest of either side of a ratio), and
//! the p-value maps back the same way.

use crate::config::Target;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// One cell's samples: for each worker process, its timed values (seconds).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub processes: Vec<Vec<f64>>,
}

impl Samples {
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.processes.iter().flatten().copied()
    }

    fn process_means(&self) -> Vec<(f64, usize)> {
        self.processes
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| (p.iter().sum::<f64>() / p.len() as f64, p.len()))
            .collect()
    }
}

/// Summary of one cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellStats {
    pub processes: usize,
    pub values: usize,
    pub mean: f64,
    pub median: f64,
    pub stdev: f64,
    /// Relative spread: stdev / mean.
    pub cv: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// A ratio with its interval and the p-value of "the two cells are equally fast".
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratio {
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Holds,
    Fails,
    Inconclusive,
    /// No speed verdict is possible (e.g. an emulated host in a cross-host comparison).
    #[serde(rename = "not-applicable")]
    NotApplicable,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Holds => "holds",
            Verdict::Fails => "fails",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotApplicable => "not-applicable",
        })
    }
}

/// The bootstrap's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Bootstrap {
    pub resamples: u32,
    pub confidence: f64,
    pub seed: u64,
}

impl Bootstrap {
    fn rng(&self, salt: u64) -> StdRng {
        StdRng::seed_from_u64(self.seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The interval of `draws`, resampled from `n` processes: the expanded percentile
    /// interval at the configured confidence.
    fn bounds(&self, mut draws: Vec<f64>, n: usize) -> (f64, f64) {
        draws.sort_by(f64::total_cmp);
        let tail = expanded_tail((1.0 - self.confidence) / 2.0, n);
        (quantile(&draws, tail), quantile(&draws, 1.0 - tail))
    }
}

/// The standard normal distribution.
fn standard_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("a valid normal distribution")
}

/// Student's t with `n - 1` degrees of freedom, for `n` of at least 2.
fn students_t(n: usize) -> StudentsT {
    StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("a valid t distribution")
}

/// The tail mass to cut from each end of the bootstrap draws for a two-sided interval whose
/// nominal tail is `tail`, with `n` processes resampled: `1 - Phi(sqrt(n/(n-1)) * t)`, t the
/// t quantile at `1 - tail` with n-1 degrees of freedom. One process: `tail` itself.
pub fn expanded_tail(tail: f64, n: usize) -> f64 {
    if n < 2 {
        return tail;
    }
    let t = students_t(n).inverse_cdf(1.0 - tail);
    let z = (n as f64 / (n as f64 - 1.0)).sqrt() * t;
    1.0 - standard_normal().cdf(z)
}

/// The inverse of [`expanded_tail`]: the nominal tail whose expanded tail is `draws_tail` (the
/// share of bootstrap draws beyond 1), for a p-value consistent with the expanded interval.
fn nominal_tail(draws_tail: f64, n: usize) -> f64 {
    if n < 2 {
        return draws_tail;
    }
    let z = standard_normal().inverse_cdf(1.0 - draws_tail);
    let t = z / (n as f64 / (n as f64 - 1.0)).sqrt();
    1.0 - students_t(n).cdf(t)
}

/// Mean of one bootstrap resample of whole processes (weighted by their value counts).
fn resampled_mean(means: &[(f64, usize)], rng: &mut StdRng) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for _ in 0..means.len() {
        let (m, k) = means[rng.random_range(0..means.len())];
        sum += m * k as f64;
        n += k;
    }
    sum / n as f64
}

fn mean_of(means: &[(f64, usize)]) -> f64 {
    let n: usize = means.iter().map(|m| m.1).sum();
    means.iter().map(|(m, k)| m * *k as f64).sum::<f64>() / n as f64
}

/// Summarises a cell; None when it has no values.
pub fn cell(samples: &Samples, boot: &Bootstrap) -> Option<CellStats> {
    let means = samples.process_means();
    if means.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = samples.values().collect();
    values.sort_by(f64::total_cmp);
    let mean = mean_of(&means);
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64
    } else {
        0.0
    };
    let mut rng = boot.rng(1);
    let draws = (0..boot.resamples)
        .map(|_| resampled_mean(&means, &mut rng))
        .collect();
    let (ci_low, ci_high) = boot.bounds(draws, means.len());
    Some(CellStats {
        processes: means.len(),
        values: values.len(),
        mean,
        median: quantile(&values, 0.5),
        stdev: var.sqrt(),
        cv: var.sqrt() / mean,
        ci_low,
        ci_high,
    })
}

/// Ratio of baseline time to candidate time, resampling each side's processes independently.
pub fn ratio(baseline: &Samples, candidate: &Samples, boot: &Bootstrap) -> Option<Ratio> {
    ratios_geomean(&[(baseline, candidate)], boot)
}

/// Geometric mean over benchmarks of baseline/candidate ratios (a single pair gives the ratio).
pub fn ratios_geomean(pairs: &[(&Samples, &Samples)], boot: &Bootstrap) -> Option<Ratio> {
    let sides: Vec<(Vec<(f64, usize)>, Vec<(f64, usize)>)> = pairs
        .iter()
        .map(|(b, c)| (b.process_means(), c.process_means()))
        .collect();
    if sides.is_empty() || sides.iter().any(|(b, c)| b.is_empty() || c.is_empty()) {
        return None;
    }
    let geo = |f: &mut dyn FnMut(&[(f64, usize)]) -> f64| {
        let logs: f64 = sides.iter().map(|(b, c)| (f(b) / f(c)).ln()).sum();
        (logs / sides.len() as f64).exp()
    };
    let estimate = geo(&mut |m| mean_of(m));
    let mut rng = boot.rng(2);
    let draws: Vec<f64> = (0..boot.resamples)
        .map(|_| geo(&mut |m| resampled_mean(m, &mut rng)))
        .collect();
    // The fewest processes of any side: the expansion for the least sampled mean.
    let fewest = sides
        .iter()
        .map(|(b, c)| b.len().min(c.len()))
        .min()
        .unwrap_or(0);
    let below = draws.iter().filter(|d| **d <= 1.0).count() as f64;
    let above = draws.iter().filter(|d| **d >= 1.0).count() as f64;
    let n = draws.len() as f64;
    // Half a draw for a tail no draw reached: the quantiles stay finite.
    let draws_tail = (below.min(above).max(0.5) / n).min(0.5);
    let p_value = (2.0 * nominal_tail(draws_tail, fewest)).clamp(1.0 / (n + 1.0), 1.0);
    let (ci_low, ci_high) = boot.bounds(draws, fewest);
    Some(Ratio {
        estimate,
        ci_low,
        ci_high,
        p_value,
    })
}

/// Decides a ratio against a target; the reason says which bound decided it.
pub fn verdict(r: &Ratio, target: &Target, confidence: f64) -> (Verdict, String) {
    let pct = confidence * 100.0;
    let interval = format!("{pct:.0}% interval [{:.4}, {:.4}]", r.ci_low, r.ci_high);
    let t = target.value;
    if target.at_least {
        if r.ci_low >= t {
            (Verdict::Holds, format!("{interval} lies at or above {t}"))
        } else if r.ci_high < t {
            (Verdict::Fails, format!("{interval} lies below {t}"))
        } else {
            (
                Verdict::Inconclusive,
                format!(
                    "{interval} straddles {t}: more processes, or a quieter host, would decide it"
                ),
            )
        }
    } else if r.ci_high <= t {
        (Verdict::Holds, format!("{interval} lies at or below {t}"))
    } else if r.ci_low > t {
        (Verdict::Fails, format!("{interval} lies above {t}"))
    } else {
        (
            Verdict::Inconclusive,
            format!("{interval} straddles {t}: more processes, or a quieter host, would decide it"),
        )
    }
}

/// Whether a cell is too noisy for a question of this size: the half-width of its interval is
/// more than half the distance between the target and 1 (for a 3% question, more than 1.5%).
pub fn too_wide_for(c: &CellStats, target: &Target) -> bool {
    let half = (c.ci_high - c.ci_low) / 2.0 / c.mean;
    let effect = (target.value - 1.0).abs().max(0.01);
    half > effect / 2.0
}

/// Linear-interpolated quantile of sorted data.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr_free::normal;

    /// Normal draws without another crate (Box-Muller).
    mod rand_distr_free {
        use rand::rngs::StdRng;
        use rand::Rng;
        pub fn normal(rng: &mut StdRng, mean: f64, sd: f64) -> f64 {
            let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
            mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    const BOOT: Bootstrap = Bootstrap {
        resamples: 2000,
        confidence: 0.95,
        seed: 7,
    };

    /// `procs` processes of `vals` values: each process has its own offset (the nested noise),
    /// each value its own noise.
    fn synthetic(
        seed: u64,
        mean: f64,
        procs: usize,
        vals: usize,
        between: f64,
        within: f64,
    ) -> Samples {
        let mut rng = StdRng::seed_from_u64(seed);
        let processes = (0..procs)
            .map(|_| {
                let offset = normal(&mut rng, 0.0, between);
                (0..vals)
                    .map(|_| mean * (1.0 + offset + normal(&mut rng, 0.0, within)))
                    .collect()
            })
            .collect();
        Samples { processes }
    }

    #[test]
    fn the_expanded_tail_cuts_deeper_with_fewer_processes() {
        // n = 6 at 95%: t(5) = 2.571, times sqrt(6/5) = 2.816, whose normal tail is 0.24%.
        let six = expanded_tail(0.025, 6);
        assert!((six - 0.00243).abs() < 0.0001, "{six}");
        // Many processes: the nominal tail; one process: nothing to expand.
        assert!((expanded_tail(0.025, 2000) - 0.025).abs() < 0.0005);
        assert_eq!(expanded_tail(0.025, 1), 0.025);
        assert!(expanded_tail(0.025, 2) < expanded_tail(0.025, 3));
        for n in [2, 3, 6, 12, 40] {
            for tail in [0.001, 0.025, 0.2] {
                let expanded = expanded_tail(tail, n);
                if expanded < 1e-9 {
                    continue; // beyond what a normal tail in f64 tells apart (n = 2, 0.1%)
                }
                let back = nominal_tail(expanded, n);
                assert!(
                    (back - tail).abs() < 1e-6 * tail.max(1e-3),
                    "{n} {tail} {back}"
                );
            }
        }
    }

    #[test]
    fn a_runtime_against_itself_is_rarely_called_different() {
        // A/A with 6 processes a side and the noise between processes that this machine shows
        // (2-3%): at 95% confidence at most about 5% of such comparisons may exclude 1. These
        // 300 seeded trials: 8 (2.7%) with the expanded interval; the plain percentile
        // bootstrap excluded 1 in 33 (11%).
        let trials = 300;
        let excluded = (0..trials)
            .filter(|&i| {
                let a = synthetic(1000 + 2 * i, 1.0, 6, 5, 0.025, 0.01);
                let b = synthetic(1001 + 2 * i, 1.0, 6, 5, 0.025, 0.01);
                let r = ratio(&a, &b, &BOOT).unwrap();
                r.ci_low > 1.0 || r.ci_high < 1.0
            })
            .count();
        let rate = excluded as f64 / trials as f64;
        assert!(
            rate <= 0.08,
            "{excluded} of {trials} A/A comparisons excluded 1"
        );
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile(&[5.0], 0.9), 5.0);
        assert_eq!(quantile(&[1.0, 3.0], 0.25), 1.5);
    }

    #[test]
    fn a_cell_summary_matches_its_data() {
        let s = Samples {
            processes: vec![vec![1.0, 2.0], vec![3.0, 4.0]],
        };
        let c = cell(&s, &BOOT).unwrap();
        assert_eq!((c.processes, c.values), (2, 4));
        assert_eq!(c.mean, 2.5);
        assert_eq!(c.median, 2.5);
        assert!((c.stdev - 1.2909944).abs() < 1e-6);
        // Only two processes, means 1.5 and 3.5: every resample's mean is 1.5, 2.5 or 3.5.
        assert!(c.ci_low >= 1.5 && c.ci_high <= 3.5 && c.ci_low < 2.5 && c.ci_high > 2.5);
        assert!(cell(&Samples::default(), &BOOT).is_none());
    }

    #[test]
    fn a_known_ratio_is_recovered_and_decided() {
        // The candidate is exactly 10% faster in expectation: ratio 1.1.
        let base = synthetic(1, 1.1, 40, 5, 0.005, 0.005);
        let cand = synthetic(2, 1.0, 40, 5, 0.005, 0.005);
        let r = ratio(&base, &cand, &BOOT).unwrap();
        assert!((r.estimate - 1.1).abs() < 0.005, "{r:?}");
        assert!(
            r.ci_low < 1.1 && 1.1 < r.ci_high,
            "the interval covers the true ratio: {r:?}"
        );
        assert!(
            r.ci_high - r.ci_low < 0.01,
            "and is narrow with low noise: {r:?}"
        );
        assert!(r.p_value < 0.01);
        let (v, why) = verdict(
            &r,
            &Target {
                at_least: true,
                value: 1.03,
            },
            0.95,
        );
        assert_eq!(v, Verdict::Holds, "{why}");
        let (v, _) = verdict(
            &r,
            &Target {
                at_least: true,
                value: 1.2,
            },
            0.95,
        );
        assert_eq!(v, Verdict::Fails);
        let (v, _) = verdict(
            &r,
            &Target {
                at_least: false,
                value: 1.2,
            },
            0.95,
        );
        assert_eq!(v, Verdict::Holds);
    }

    #[test]
    fn an_interval_straddling_the_target_is_inconclusive() {
        // True ratio 1.03 with noisy processes: the interval must contain 1.03 and be wide.
        let base = synthetic(3, 1.03, 6, 3, 0.03, 0.01);
        let cand = synthetic(4, 1.0, 6, 3, 0.03, 0.01);
        let r = ratio(&base, &cand, &BOOT).unwrap();
        assert!(r.ci_low < 1.03 && r.ci_high > 1.03, "{r:?}");
        let (v, why) = verdict(
            &r,
            &Target {
                at_least: true,
                value: 1.03,
            },
            0.95,
        );
        assert_eq!(v, Verdict::Inconclusive);
        assert!(why.contains("straddles 1.03"), "{why}");
        let c = cell(&base, &BOOT).unwrap();
        assert!(
            too_wide_for(
                &c,
                &Target {
                    at_least: true,
                    value: 1.03
                }
            ),
            "{c:?}"
        );
    }

    #[test]
    fn equal_cells_are_not_significantly_different() {
        let a = synthetic(5, 1.0, 20, 5, 0.01, 0.01);
        let b = synthetic(6, 1.0, 20, 5, 0.01, 0.01);
        let r = ratio(&a, &b, &BOOT).unwrap();
        assert!(r.p_value > 0.05, "{r:?}");
        assert!(r.ci_low < 1.0 && r.ci_high > 1.0);
    }

    #[test]
    fn resampling_is_by_process_so_correlated_noise_widens_the_interval() {
        // Same total noise, once between processes and once within: the former must give a
        // wider interval, which a per-value bootstrap would miss.
        let nested = synthetic(8, 1.0, 10, 20, 0.02, 0.0);
        let flat = synthetic(8, 1.0, 10, 20, 0.0, 0.02);
        let (cn, cf) = (cell(&nested, &BOOT).unwrap(), cell(&flat, &BOOT).unwrap());
        assert!(
            cn.ci_high - cn.ci_low > 2.0 * (cf.ci_high - cf.ci_low),
            "{cn:?} vs {cf:?}"
        );
    }

    #[test]
    fn the_geometric_mean_of_known_ratios() {
        let pairs = [
            (
                synthetic(9, 2.0, 30, 3, 0.001, 0.001),
                synthetic(10, 1.0, 30, 3, 0.001, 0.001),
            ),
            (
                synthetic(11, 1.0, 30, 3, 0.001, 0.001),
                synthetic(12, 2.0, 30, 3, 0.001, 0.001),
            ),
            (
                synthetic(13, 1.0, 30, 3, 0.001, 0.001),
                synthetic(14, 0.25, 30, 3, 0.001, 0.001),
            ),
        ];
        let refs: Vec<(&Samples, &Samples)> = pairs.iter().map(|(a, b)| (a, b)).collect();
        let g = ratios_geomean(&refs, &BOOT).unwrap();
        // (2 * 0.5 * 4)^(1/3) = 1.5874
        assert!((g.estimate - 4f64.powf(1.0 / 3.0)).abs() < 0.003, "{g:?}");
        assert!(g.ci_low < g.estimate && g.estimate < g.ci_high);
    }

    #[test]
    fn the_same_seed_gives_the_same_report() {
        let a = synthetic(15, 1.0, 8, 4, 0.02, 0.01);
        let b = synthetic(16, 0.95, 8, 4, 0.02, 0.01);
        let (r1, r2) = (ratio(&a, &b, &BOOT).unwrap(), ratio(&a, &b, &BOOT).unwrap());
        assert_eq!(
            (r1.ci_low, r1.ci_high, r1.p_value),
            (r2.ci_low, r2.ci_high, r2.p_value)
        );
    }
}
