"""Passwords as NIST SP 800-63B asks (length, no blocklisted or guessable values, long ones
allowed) and user names that are unique regardless of case and safe in URLs."""

from __future__ import annotations

import random
import string

import pytest
from sqlalchemy.exc import IntegrityError

from rater.auth import passwords, service
from rater.auth.models import User
from rater.demo import COORDINATOR, RATERS
from rater.extensions import db
from tests.conftest import PASSWORD


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "at least 8 characters"),
        ("Tr0ub4d", "at least 8 characters"),  # 7
        (" " * 12, "only spaces"),
        ("\t \n \u3000  \u00a0 ", "only spaces"),
        ("x" * (passwords.MAX_LENGTH + 1), f"at most {passwords.MAX_LENGTH} characters"),
        ("password", "too common"),  # the breach lists' classics
        ("12345678", "too common"),
        ("qwertyuiop", "too common"),
        ("iloveyou", "too common"),
        ("Password1!", "too common"),  # and their usual variants
        ("letmein123", "too common"),
        ("aaaaaaaaaaaa", "too common"),  # repeated or sequential characters
        ("abcdefgh1234", "too common"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password, problem):
    found = passwords.password_problem(password)
    assert found is not None and problem in found, found


def test_context_words_count_as_guessable():
    """The user name and the tool's own words are the first guesses of an attacker."""
    assert passwords.password_problem("Kowalczyk2024") is None
    assert "too common" in passwords.password_problem("Kowalczyk2024", ["kowalczyk"])
    assert "too common" in passwords.password_problem("raterrater")


@pytest.mark.parametrize(
    "password",
    [
        PASSWORD,  # the test suite's
        "correct horse battery staple",  # spaces are fine
        "Tr0ub4dor&3x",
        "ünïcödé-pässwört-🙂",
        "a" + "-long-passphrase" * 4,  # 65 characters
        "".join(random.Random(0).choices(string.printable[:94], k=passwords.MAX_LENGTH)),
    ],
)
def test_strong_and_long_passwords_pass(password):
    assert passwords.MAX_LENGTH >= 64
    assert passwords.password_problem(password) is None


def test_the_demo_and_test_passwords_pass_the_policy():
    for username, password in (COORDINATOR, *RATERS, ("r1", PASSWORD), ("anna", PASSWORD)):
        assert passwords.password_problem(password, [username]) is None, username


@pytest.mark.usefixtures("app")
def test_add_user_refuses_a_common_password():
    with pytest.raises(service.UserError, match="too common"):
        service.add_user("anna", "rater", "password1")
    assert service.list_users() == []


@pytest.mark.parametrize(
    "name",
    ["team/anna", "anna smith", "anna?x=1", "anna#2", "anna%2F", "..", ".anna", "-anna",
     "ánna", "anna\x00", "a" * 81, ""],
)  # fmt: skip
@pytest.mark.usefixtures("app")
def test_unsafe_user_names_are_refused(name):
    with pytest.raises(service.UserError, match="user name"):
        service.add_user(name, "rater", PASSWORD)


@pytest.mark.parametrize("name", ["anna", "Anna.Smith", "r_2", "t-1", "7"])
@pytest.mark.usefixtures("app")
def test_safe_user_names_are_accepted(name):
    assert service.add_user(name, "rater", PASSWORD).username == name


@pytest.mark.usefixtures("app")
def test_user_names_are_unique_regardless_of_case(factory):
    factory.user("Anna")
    with pytest.raises(service.UserError, match="already exists"):
        service.add_user("aNNA", "rater", PASSWORD)
    assert service.find_user("ANNA").username == "Anna"


@pytest.mark.usefixtures("app")
def test_the_database_refuses_names_that_differ_only_in_case(factory):
    """The service's check can race; the unique index on lower(username) cannot."""
    user = factory.user("Anna")
    db.session.add(User(username="anna", password_hash=user.password_hash, role="rater"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_cli_add_explains_a_refused_password(runner):
    args = ["users", "add", "anna", "--role", "rater", "--password-stdin"]
    result = runner.invoke(args=args, input="12345678\n")
    assert result.exit_code == 1
    assert "Cannot add user: the password is too common" in result.output
