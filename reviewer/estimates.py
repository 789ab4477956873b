"""Django-free estimators behind the review statistics: what the verdicts say about the whole
dataset, not only about the reviewed images.

The reviewed images are not a random sample of the dataset: reviewers work through the
flagged part (highest score first, or nearest the boundary), and only the audit sample is
a random sample of the unflagged part. So every image with a verdict gets an
inverse-probability weight from its stratum: each score bin of the flagged part is one
stratum (the reviewed images of a bin stand for the bin's flagged images: inclusion
probability n_h / N_h), and the unflagged part is one stratum sampled at random by the
audit (probability n_audited / N_unflagged). Images reviewed for another reason below the
threshold (the uncertain queue, items that fell below after a rescore) are no random
sample of anything and weigh 0. Precision, recall and the offensive share below the
threshold are ratios of weighted sums; their 95 % intervals come from a stratified
(Poisson) bootstrap, the audit share's from SciPy's Wilson interval.

Agreement: Cohen's kappa (scikit-learn) per reviewer pair and Fleiss' kappa over items
with three or more verdicts, each with a bootstrap interval over items. The forecast fits
the learning curve (held-out F1 against verdicts) with SciPy's curve_fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit
from scipy.stats import binomtest, norm
from sklearn.metrics import cohen_kappa_score

# Bootstrap replicates, and the seed that makes the intervals the same on every page load.
BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 16
# Items per block of the Poisson bootstrap: replicates x block counts in memory at once.
BOOTSTRAP_BLOCK = 4096
# Stratum of a reviewed image below the threshold that is no audit item (weight 0).
UNWEIGHTED = -1
# The learning curve "flattens" where 100 more verdicts add less than this much F1.
FLAT_GAIN_PER_100 = 0.005
# Active review time: gaps between one reviewer's verdicts longer than this are breaks.
ACTIVE_GAP_SECONDS = 300.0
# The least active review time a reviewer's rate is measured from.
MIN_ACTIVE_SECONDS = 120.0


@dataclass(frozen=True)
class WeightedSample:
    """Reviewed images with their stratum and each stratum's population.

    Attributes:
        scores: (n,) scores of the reviewed images under the run.
        labels: (n,) 1 = confirmed inappropriate, 0 = appropriate.
        strata: (n,) stratum index into population, or UNWEIGHTED.
        population: (H,) images of the run in each stratum (N_h).
        unflagged_stratum: the index of the audit stratum (the unflagged part).
        score_bins: strata 0..score_bins-1 are score bins (one nobody reviewed counts as the
            nearest reviewed one); None: every stratum but the audit one.
    """

    scores: np.ndarray
    labels: np.ndarray
    strata: np.ndarray
    population: np.ndarray
    unflagged_stratum: int
    score_bins: int | None = None


def _collapsed(
    population: np.ndarray, reviewed: np.ndarray, unflagged: int, score_bins: int | None
) -> np.ndarray:
    """Strata populations with each score bin nobody reviewed merged into the nearest reviewed
    bin (the lower one on a tie: usually the less precise), so that its images still count
    (as that bin's) instead of dropping out of the flagged set. The audit stratum stays."""
    merged = population.astype(np.float64)
    limit = len(population) if score_bins is None else score_bins
    bins = [h for h in range(limit) if h != unflagged]
    merged[bins] = 0.0
    seen = [h for h in bins if reviewed[h] > 0]
    for h in bins:
        if seen:
            target = min(seen, key=lambda s: (abs(s - h), s))
            merged[target] += population[h]
    return merged


def _interval(values: np.ndarray) -> tuple[float | None, float | None]:
    finite = values[np.isfinite(values)]
    if finite.size < 0.5 * values.size or finite.size == 0:
        return None, None
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def _kish_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of weighted observations: (sum w)^2 / sum w^2."""
    square = float((weights**2).sum())
    return float(weights.sum()) ** 2 / square if square > 0 else 0.0


def _widened(
    low: float | None, high: float | None, estimate: float | None, size: float
) -> tuple[float | None, float | None]:
    """The bootstrap interval, never narrower than a Wilson interval at the estimate with
    Kish's effective size: a bootstrap over strata of one or two reviewed images has no
    spread and would claim certainty that four verdicts cannot give."""
    if estimate is None or size <= 0 or low is None or high is None:
        return low, high
    z = float(norm.ppf(0.975))
    centre = (estimate + z * z / (2 * size)) / (1 + z * z / size)
    half = (z / (1 + z * z / size)) * np.sqrt(
        estimate * (1 - estimate) / size + z * z / (4 * size * size)
    )
    return min(low, max(0.0, centre - half)), max(high, min(1.0, centre + half))


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


class StratifiedEstimator:
    """Weighted precision / recall / flagged counts at any thresholds, with bootstrap intervals.

    For each stratum h with n_h reviewed images, a stratum total of a per-image quantity q is
    N_h * mean_h(q); a replicate resamples each stratum's images with replacement. A stratum
    of one reviewed image adds no spread, so the precision and recall intervals are widened
    to at least a Wilson interval at Kish's effective sample size.
    """

    def __init__(self, sample: WeightedSample, thresholds: Sequence[float]) -> None:
        self.sample = sample
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        used = sample.strata != UNWEIGHTED
        self.scores = sample.scores[used].astype(np.float64)
        self.labels = sample.labels[used].astype(np.float64)
        self.strata = sample.strata[used].astype(np.int64)
        self.n_per_stratum = np.bincount(self.strata, minlength=len(sample.population))
        self.population = _collapsed(
            sample.population, self.n_per_stratum, sample.unflagged_stratum, sample.score_bins
        )
        # (n, T) indicators: above each threshold, and above and confirmed.
        above = self.scores[:, None] >= self.thresholds[None, :]
        self._quantities = np.concatenate(
            [above, above * self.labels[:, None], self.labels[:, None]], axis=1
        )
        self.point = self._totals(np.ones((1, self.scores.size)))[0]
        self.replicates = self._bootstrap()

    def _totals(self, counts: np.ndarray) -> np.ndarray:
        """(R, 2T+1) weighted population totals of the quantities for R count vectors."""
        population = self.population
        totals = np.zeros((counts.shape[0], self._quantities.shape[1]))
        for h in np.flatnonzero(self.n_per_stratum):
            members = self.strata == h
            c = counts[:, members]
            size = c.sum(axis=1)
            mean = (c @ self._quantities[members]) / np.where(size > 0, size, np.nan)[:, None]
            totals += population[h] * mean
        return totals

    def _bootstrap(self) -> np.ndarray:
        """(R, 2T+1) replicate totals: each stratum resampled with replacement to its own
        size (multinomial counts); a stratum over BOOTSTRAP_BLOCK images takes Poisson(1)
        counts block by block instead (the same in the limit, in bounded memory)."""
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        population = self.population
        replicates = np.zeros((BOOTSTRAP_REPLICATES, self._quantities.shape[1]))
        for h in np.flatnonzero(self.n_per_stratum):
            quantities = self._quantities[self.strata == h]
            n_h = quantities.shape[0]
            if n_h <= BOOTSTRAP_BLOCK:
                counts = rng.multinomial(n_h, np.full(n_h, 1.0 / n_h), size=BOOTSTRAP_REPLICATES)
                mean = (counts @ quantities) / n_h
            else:
                sums = np.zeros((BOOTSTRAP_REPLICATES, quantities.shape[1]))
                sizes = np.zeros(BOOTSTRAP_REPLICATES)
                for start in range(0, n_h, BOOTSTRAP_BLOCK):
                    block = quantities[start : start + BOOTSTRAP_BLOCK]
                    c = rng.poisson(1.0, size=(BOOTSTRAP_REPLICATES, block.shape[0])).astype(float)
                    sums += c @ block
                    sizes += c.sum(axis=1)
                mean = sums / sizes[:, None]
            replicates += population[h] * mean
        return replicates

    def _columns(self, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = self.thresholds.size
        return totals[..., :t], totals[..., t : 2 * t], totals[..., 2 * t]

    def precision_recall(self) -> list[dict[str, float | int | None]]:
        """Per threshold: estimated precision and recall with intervals, and how many
        reviewed images at or above the threshold the precision rests on."""
        above, hits, positives = self._columns(self.point)
        rep_above, rep_hits, rep_positives = self._columns(self.replicates)
        with np.errstate(invalid="ignore", divide="ignore"):
            rep_precision = rep_hits / rep_above
            rep_recall = rep_hits / rep_positives[:, None]
        recall_defined = self.n_per_stratum[self.sample.unflagged_stratum] > 0
        # Each reviewed image stands for population_h / n_h images of its stratum.
        weights = self.population[self.strata] / np.maximum(self.n_per_stratum[self.strata], 1)
        positive = self.labels > 0
        rows: list[dict[str, float | int | None]] = []
        for j, threshold in enumerate(self.thresholds):
            precision = _ratio(float(hits[j]), float(above[j]))
            recall = _ratio(float(hits[j]), float(positives)) if recall_defined else None
            p_low, p_high = _widened(
                *_interval(rep_precision[:, j]),
                precision,
                _kish_size(weights[self.scores >= threshold]),
            )
            r_low, r_high = (
                _widened(*_interval(rep_recall[:, j]), recall, _kish_size(weights[positive]))
                if recall_defined
                else (None, None)
            )
            rows.append(
                {
                    "threshold": float(threshold),
                    "precision": precision,
                    "precision_low": p_low,
                    "precision_high": p_high,
                    "recall": recall,
                    "recall_low": r_low,
                    "recall_high": r_high,
                    "n_reviewed_above": int((self.scores >= threshold).sum()),
                }
            )
        return rows


def proportion_interval(successes: int, n: int) -> tuple[float | None, float | None]:
    """SciPy's Wilson 95 % interval of a binomial proportion; (None, None) without data."""
    if n <= 0:
        return None, None
    ci = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _bootstrap_items(n: int) -> np.ndarray:
    return np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(BOOTSTRAP_REPLICATES, n))


def cohen_kappa_interval(
    a: Sequence[str], b: Sequence[str]
) -> tuple[float | None, float | None, float | None]:
    """Cohen's kappa of two raters (scikit-learn) and its bootstrap 95 % interval over items;
    None where undefined (no items, or both always gave one and the same label)."""
    if len(a) != len(b):
        raise ValueError("both raters must label the same items")
    if not a or len(set(a) | set(b)) < 2:
        return None, None, None
    x, y = np.asarray(a), np.asarray(b)
    kappa = float(cohen_kappa_score(x, y))
    if math.isnan(kappa):
        return None, None, None
    replicates = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for rows in _bootstrap_items(len(x))[:200]:
            xs, ys = x[rows], y[rows]
            replicates.append(
                float(cohen_kappa_score(xs, ys)) if len(set(xs) | set(ys)) > 1 else math.nan
            )
    low, high = _interval(np.asarray(replicates))
    return kappa, low, high


def fleiss_kappa(table: np.ndarray) -> float | None:
    """Fleiss' kappa of an (items, categories) table of verdict counts; items may have
    different numbers of verdicts (each at least 2): per-item agreement is the share of
    agreeing verdict pairs, chance agreement the squared category shares of all verdicts.
    None when undefined (one category only)."""
    counts = np.asarray(table, dtype=np.float64)
    raters = counts.sum(axis=1)
    if counts.shape[0] == 0 or (raters < 2).any():
        return None
    observed = float(np.mean((counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1))))
    shares = counts.sum(axis=0) / counts.sum()
    expected = float((shares**2).sum())
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa_interval(table: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Fleiss' kappa and its bootstrap 95 % interval over items."""
    counts = np.asarray(table, dtype=np.float64)
    kappa = fleiss_kappa(counts)
    if kappa is None:
        return None, None, None
    replicates = [fleiss_kappa(counts[rows]) for rows in _bootstrap_items(counts.shape[0])]
    low, high = _interval(np.asarray([math.nan if k is None else k for k in replicates]))
    return kappa, low, high


def active_review_rate(times_by_reviewer: dict[str, list[float]]) -> dict[str, float | None]:
    """Verdicts per hour of active review (gaps over ACTIVE_GAP_SECONDS are breaks), each
    reviewer's and the team's (their sum: reviewers work in parallel)."""
    per_reviewer: dict[str, float] = {}
    for name, times in times_by_reviewer.items():
        ordered = np.sort(np.asarray(times, dtype=np.float64))
        if ordered.size < 2:
            continue
        gaps = np.diff(ordered)
        active = float(np.minimum(gaps, ACTIVE_GAP_SECONDS).sum())
        # A rate from seconds of work (verdicts saved in a burst, a bulk action) would
        # forecast a queue of thousands in no time: not measured yet.
        if active >= MIN_ACTIVE_SECONDS:
            per_reviewer[name] = (ordered.size - 1) / active * 3600.0
    team = sum(per_reviewer.values()) if per_reviewer else None
    return {"team_per_hour": team, **{f"reviewer:{k}": v for k, v in per_reviewer.items()}}


def _power_law(n: np.ndarray, ceiling: float, gap: float, decay: float) -> np.ndarray:
    return ceiling - gap * np.power(n, -decay)


@dataclass(frozen=True)
class LearningCurveForecast:
    """A fit F1(n) = ceiling - gap * n^-decay of held-out F1 against verdicts."""

    points: int
    ceiling: float | None
    flat_at: int | None
    more_verdicts: int | None
    reason: str


def learning_curve_forecast(
    verdicts: Sequence[float], f1: Sequence[float], *, current: int
) -> LearningCurveForecast:
    """How many more verdicts before held-out F1 stops improving (100 more verdicts add
    less than FLAT_GAIN_PER_100), from a power-law fit of the points so far (at least 3)."""
    n = np.asarray(verdicts, dtype=np.float64)
    y = np.asarray(f1, dtype=np.float64)
    keep = (n > 0) & np.isfinite(y)
    n, y = n[keep], y[keep]
    if np.unique(n).size < 3:
        return LearningCurveForecast(
            int(n.size), None, None, None, "needs held-out F1 of at least 3 trained versions"
        )
    try:
        (ceiling, gap, decay), _ = curve_fit(
            _power_law,
            n,
            y,
            p0=(min(1.0, float(y.max()) + 0.05), 1.0, 0.5),
            bounds=([0.0, 0.0, 0.01], [1.0, 1e4, 3.0]),
            maxfev=5000,
        )
    except (RuntimeError, ValueError) as exc:
        return LearningCurveForecast(int(n.size), None, None, None, f"no fit: {exc}")
    # d F1 / dn = gap * decay * n^-(decay+1); flat where 100 times that < FLAT_GAIN_PER_100.
    flat_at = (100.0 * gap * decay / FLAT_GAIN_PER_100) ** (1.0 / (decay + 1.0))
    flat = int(math.ceil(flat_at)) if math.isfinite(flat_at) else None
    more = max(0, flat - current) if flat is not None else None
    return LearningCurveForecast(int(n.size), float(ceiling), flat, more, "power-law fit")
