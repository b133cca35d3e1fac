"""The password policy, as NIST SP 800-63B describes it (pure: no Flask, no database).

* At least ``MIN_LENGTH`` characters, at most ``MAX_LENGTH`` (NIST: allow at least 64); any
  characters, spaces and Unicode included, but not only white space. No composition rules
  (digits, capitals, symbols) and no expiry: NIST advises against both.
* Refused when it is commonly used, expected or compromised. The check is zxcvbn (the
  maintained Python port on PyPI of Dropbox's estimator): it matches the password against
  frequency lists of passwords from breach corpora (about 30,000), English words, names and
  common words, also with the usual substitutions (``p@ssw0rd``), reversals and appended
  digits or years, and it recognises repeats (``aaaa``, ``abcabc``), sequences (``abcd``,
  ``6543``), keyboard patterns (``qwerty``), dates and context words (the user name, the
  tool's own words). A plain list would match only exact entries and none of their variants.
* A password is refused when zxcvbn estimates that fewer than 10**6 guesses find it (its
  scores 0 and 1): that is every entry of its password list and the common variants, the
  values an online attacker tries first. Against online guessing the login limits (5 failures
  per account in 15 minutes) do the rest, which is why NIST asks for a blocklist rather than a
  strength rule: 10**6 guesses at that rate take decades.

zxcvbn's cost grows steeply with length (a 128-character password can take seconds), so only
the first ``CHECKED_LENGTH`` characters are estimated: 64 characters that are not guessable make
a password that is not guessable, whatever follows.
"""

from __future__ import annotations

from collections.abc import Sequence

from zxcvbn import zxcvbn

MIN_LENGTH = 8
MAX_LENGTH = 128
CHECKED_LENGTH = 64
MIN_GUESSES_LOG10 = 6
# Words anyone attacking this tool tries first.
TOOL_WORDS = ("rater", "rating", "coordinator", "therapy", "session", "ghes", "sthar")


def password_problem(password: str, context: Sequence[str] = ()) -> str | None:
    """Why ``password`` may not be used, or None when it may.

    ``context`` holds words specific to the account (its user name) that count as guessable.
    """
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password may have at most {MAX_LENGTH} characters"
    if not password.strip():
        return "the password consists of only spaces"
    estimate = zxcvbn(password[:CHECKED_LENGTH], user_inputs=[*context, *TOOL_WORDS])
    if estimate["guesses_log10"] < MIN_GUESSES_LOG10:
        return _too_common(estimate["feedback"])
    return None


def _too_common(feedback: dict) -> str:
    """The refusal with zxcvbn's reason, when it names one ("This is a top-10 common
    password", "Repeats like "aaa" are easy to guess")."""
    reason = (feedback.get("warning") or "").rstrip(".")
    detail = f" ({reason})" if reason else ""
    return (
        f"the password is too common or too easy to guess{detail}; "
        "choose a longer or less usual one"
    )
