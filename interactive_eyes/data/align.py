"""Find where a known audio excerpt starts inside a longer recording (normalised cross-correlation).

Used by ``ie-bench data fetch --videos``: the released InteractiveEyes tracks (one per person,
near-silent outside that person's turns) sum to the clip's dialogue, and the YouTube source
around the reference-frame time holds the same dialogue somewhere within a few seconds. The
lag at which the sum best matches the source is the clip's true start.

``find_offset`` is a pure function of two sample arrays. It refuses (``AlignmentError``) when
there is no *clear* peak: the best normalised correlation must be high (the same sound, not
merely similar) and must stand out from every other lag further than ``exclusion`` away (a
repeated or periodic sound has several equally good lags, and noise has none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The released tracks are the source's own dialogue, so at the true lag the normalised
# correlation with a lossy (AAC/Opus) copy of the source is close to 1; independent signals of
# n samples correlate at about 1/sqrt(n) (< 0.01 for a second at 16 kHz). 0.5 separates the two
# with room for background music or a level change in the source mix.
MIN_PEAK = 0.5
# The best lag must beat every lag further than ``EXCLUSION`` away by this factor: speech
# correlates with itself only within a syllable, so a true match stands out by far more, while a
# periodic or repeated sound gives several near-equal peaks (factor ~1).
MIN_CLARITY = 1.5
# Lags within 50 ms of the peak belong to the peak itself (pitch periods are 2-12 ms, and the
# main lobe of band-limited speech is a few ms wide); a rival peak must be further away.
EXCLUSION = 0.05


class AlignmentError(ValueError):
    """No clear alignment; ``str(err)`` is one line with the measured peak and clarity."""


@dataclass(frozen=True)
class Alignment:
    offset: float  # seconds: template[0] lies at signal time `offset`
    offset_samples: int
    peak: float  # normalised correlation at the best lag (1 = identical up to gain)
    runner_up: float  # best normalised correlation further than `exclusion` from the peak

    @property
    def clarity(self) -> float:
        return float("inf") if self.runner_up <= 0 else self.peak / self.runner_up


def normalized_correlation(signal: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation for every lag at which ``template`` lies inside ``signal``.

    ``ncc[k] = <signal[k:k+n], template> / (|signal[k:k+n]| |template|)`` (after removing each
    array's mean), computed by FFT (``scipy.signal.correlate``) with the window norms from a
    cumulative sum, so a long search stays O(N log N). Lags where the window is silent get 0.
    """
    from scipy.signal import correlate

    s = np.asarray(signal, dtype=np.float64).ravel()
    t = np.asarray(template, dtype=np.float64).ravel()
    n = t.size
    if n == 0 or s.size < n:
        raise ValueError(f"the signal ({s.size} samples) must be at least as long as the template ({n} samples)")
    s = s - s.mean()
    t = t - t.mean()
    t_norm = np.sqrt(np.dot(t, t))
    raw = correlate(s, t, mode="valid", method="fft")
    csum = np.concatenate(([0.0], np.cumsum(s * s)))
    window_energy = np.maximum(csum[n:] - csum[:-n], 0.0)  # cumsum differences can dip below 0 by rounding
    denom = np.sqrt(window_energy) * t_norm
    # A window (or template) 1e-12 below the signal's scale is digital silence: no evidence.
    floor = 1e-12 * max(float(np.sqrt(csum[-1])) * t_norm, 1e-300)
    out = np.zeros_like(raw)
    ok = denom > floor
    out[ok] = raw[ok] / denom[ok]
    return out


def find_offset(
    signal: np.ndarray,
    template: np.ndarray,
    sample_rate: int,
    *,
    min_peak: float = MIN_PEAK,
    min_clarity: float = MIN_CLARITY,
    exclusion: float = EXCLUSION,
) -> Alignment:
    """Where ``template`` starts in ``signal`` (both mono, same ``sample_rate``), or ``AlignmentError``."""
    ncc = normalized_correlation(signal, template)
    k = int(np.argmax(ncc))
    peak = float(ncc[k])
    half = int(round(exclusion * sample_rate))
    outside = np.concatenate((ncc[: max(0, k - half)], ncc[k + half + 1 :]))
    runner_up = float(max(outside.max(initial=0.0), 0.0))
    found = Alignment(offset=k / float(sample_rate), offset_samples=k, peak=peak, runner_up=runner_up)
    if peak < min_peak:
        raise AlignmentError(
            f"no clear alignment: best normalised correlation {peak:.3f} < {min_peak} "
            f"(at {found.offset:.3f} s): the recording does not contain the released audio"
        )
    if found.clarity < min_clarity:
        raise AlignmentError(
            f"no clear alignment: peak {peak:.3f} at {found.offset:.3f} s is only {found.clarity:.2f}x the best "
            f"correlation elsewhere ({runner_up:.3f}; need {min_clarity}x): ambiguous"
        )
    return found
