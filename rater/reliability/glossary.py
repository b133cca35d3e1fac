"""What every coefficient and symbol of the reliability pages means, in one place (pure).

The pages link each symbol to its entry of the glossary page (``/reliability/glossary``) and
show its short explanation where it appears (a ``title`` and a line of text); the glossary page
shows the long one.
"""

from __future__ import annotations

from dataclasses import dataclass

from rater.reliability.results import FIRM_PAIR_SESSIONS, MIN_SESSIONS, WIDE_INTERVAL


@dataclass(frozen=True)
class Term:
    key: str  # the anchor on the glossary page
    symbol: str
    short: str
    long: str


TERMS: tuple[Term, ...] = (
    Term(
        "icc-a1",
        "ICC(A,1)",
        "agreement of one rater with another, in absolute score points",
        "Intraclass correlation, two-way random effects, absolute agreement, single rater "
        "(McGraw & Wong 1996; Shrout & Fleiss ICC(2,1)). The share of the score variance that "
        "is due to real differences between sessions, when one rater's score is used. "
        "Differences in a rater's general severity count as disagreement.",
    ),
    Term(
        "icc-a2",
        "ICC(A,2)",
        "agreement of the mean of two raters (the study's ICC(2,2))",
        "As ICC(A,1), but for the mean of the two raters' scores: the reliability of the "
        "value a double-coded session contributes to the analysis (the pair mean). Computed "
        "per rater pair over the sessions both rated; the dashboard shows the mean, median "
        "and range across pairs.",
    ),
    Term(
        "icc-qk",
        "ICC(Q,k̂)",
        "reliability of the study's scores over the whole (incomplete) design",
        "Putka et al. (2008) G(q,k): one coefficient for all main and double ratings at once, "
        "from a crossed random-effects model (REML) of sessions and raters. It estimates the "
        "reliability of a session's mean over its k̂ raters when sessions are compared with "
        "each other, counting only the part q of the raters' severity differences that does "
        "not cancel out. The 95 % interval is by Monte-Carlo draws.",
    ),
    Term(
        "khat",
        "k̂",
        "the harmonic mean number of raters per session",
        "With 40 % of sessions double-coded and the rest rated once, k̂ lies between 1 and 2 "
        "(about 1.25). ICC(Q,k̂) and ICC(A,k̂) are reliabilities of a mean of k̂ ratings.",
    ),
    Term(
        "q",
        "q",
        "the share of rater severity that does not cancel between sessions",
        "Putka's q: 0 when every session has the same raters (their severity shifts every "
        "session alike and cancels), up to 1/k̂ when no two sessions share a rater.",
    ),
    Term(
        "pairs",
        "Pairs 4 / 10",
        "rater pairs with a value / rater pairs that share double-coded sessions",
        f"A pair has a value when it shares at least {MIN_SESSIONS} double-coded sessions "
        "whose scores vary. Pairs without a value are left out of the mean and median.",
    ),
    Term(
        "firm",
        "Firm pairs",
        f"pairs with {FIRM_PAIR_SESSIONS}+ shared sessions and a 95 % interval at most "
        f"{WIDE_INTERVAL:.2f} wide",
        f"A pair value from {MIN_SESSIONS}–{FIRM_PAIR_SESSIONS - 1} sessions, or with a very "
        "wide interval, is shown with a caution: it may be far from the pair's true "
        "agreement. The mean and median are shown twice: over every pair with a value, and "
        "over the firm pairs only.",
    ),
    Term(
        "ci",
        "[95 % CI]",
        "the 95 % confidence interval",
        "The range of values compatible with the data. A wide interval means the value is "
        "uncertain; “no lower bound” means the data cannot exclude any low value.",
    ),
    Term(
        "alpha-interval",
        "α interval",
        "Krippendorff's alpha, scores treated as numbers",
        "Krippendorff's alpha over every main and double rating: 1 − observed / expected "
        "disagreement, with squared differences (interval level). Works with any number of "
        "raters per session and missing ratings.",
    ),
    Term(
        "alpha-ordinal",
        "α ordinal",
        "Krippendorff's alpha, scores treated as ordered categories",
        "As α interval, but differences count by how many observed scores lie between two "
        "values (ordinal level): suited to anchored items whose steps need not be equal.",
    ),
    Term(
        "kappa",
        "κ quadratic, κ linear",
        "weighted kappa of an item: agreement beyond chance",
        "Cohen's weighted kappa of a pair's item scores: disagreements weigh by the squared "
        "(quadratic) or plain (linear) distance. Quadratic kappa is close to ICC(C,1).",
    ),
    Term(
        "cohen-kappa",
        "Cohen's κ",
        "agreement of two raters on categories, beyond chance",
        "Cohen's kappa of a nominal item per rater pair: the share of sessions both put in "
        "the same category, corrected for the agreement expected by chance. Shown as the mean "
        "across the pairs that have a value.",
    ),
    Term(
        "fleiss-kappa",
        "Fleiss' κ",
        "agreement of the whole calibration panel on categories",
        "Fleiss' kappa of a nominal item over the calibration sessions every rater coded: "
        "chance-corrected agreement of any number of raters.",
    ),
    Term(
        "alpha-nominal",
        "α nominal",
        "Krippendorff's alpha, values treated as unordered categories",
        "Krippendorff's alpha over every main and double rating of a nominal item: any two "
        "different categories count as one disagreement.",
    ),
    Term(
        "percent-agreement",
        "% agreement",
        "how often two raters chose the same category",
        "The percentage of shared sessions where a pair chose the same category (not "
        "corrected for chance). Shown as the mean across the pairs that have a value.",
    ),
    Term(
        "cronbach",
        "Cronbach α",
        "internal consistency: do a scale's items measure one thing",
        "Cronbach's alpha over the main ratings (one per session): how strongly a scale's "
        "items go together. Not a measure of agreement between raters.",
    ),
    Term(
        "omega",
        "ω",
        "McDonald's omega: internal consistency from a one-factor model",
        "Like Cronbach's alpha, but without assuming that every item weighs the same.",
    ),
    Term(
        "mean-difference",
        "Mean difference",
        "how much higher the first rater scores than the second, on average",
        "The mean of rater 1 − rater 2 over the sessions both rated, with its paired-t 95 % "
        "interval: a systematic difference in severity between the two raters.",
    ),
    Term(
        "bland-altman",
        "Bland–Altman plot",
        "each session's difference between two raters against their mean",
        "The solid line is the mean difference, the dashed lines the 95 % limits of agreement "
        "(mean ± 1.96 standard deviations of the differences). All plots of a measure share "
        f"one scale; a pair needs {MIN_SESSIONS}+ shared sessions to be drawn.",
    ),
    Term(
        "drift",
        "Drift",
        "a rater's mean difference from their partners over time",
        "For every double-coded session, the rater's score minus their partner's, averaged "
        "per month or per block of sessions. A rater who drifts away from zero is becoming "
        "more lenient or more severe.",
    ),
    Term(
        "bands",
        "poor · moderate · good · excellent",
        "Koo & Li (2016) bands of an ICC",
        "poor below .50, moderate .50–.75, good .75–.90, excellent above .90.",
    ),
    Term(
        "not-enough",
        "not enough data",
        f"fewer than {MIN_SESSIONS} sessions, or scores that do not vary",
        "A coefficient is not shown as a number when it rests on too few sessions or is "
        "undefined; the reason is given instead.",
    ),
)

BY_KEY = {term.key: term for term in TERMS}
