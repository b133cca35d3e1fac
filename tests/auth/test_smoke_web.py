"""Login, logout and the role home pages."""

import pytest

from rater.extensions import db


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Log in" in response.data


def test_anonymous_home_redirects_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_coordinator_sees_study_overview(client, auth, factory):
    factory.user("coord", "coordinator")
    factory.session("P01-S01", number=1)
    factory.session("P01-S06", number=6, therapist="T1")
    factory.session("P02-S02", patient="P02", therapist="T2", number=2, status="excluded")
    assert auth.login("coord").status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Study overview" in page
    summary = "3 sessions of 2 patients treated by 2 therapists: 2 in the main study, 1 excluded."
    assert summary in page
    assert "Phase I" in page and "Phase II" in page


def test_rater_home_is_the_queue(client, auth, factory):
    rater = factory.user("r1")
    session = factory.session()
    factory.assignment(session, rater, purpose="double")
    auth.login("r1")
    response = client.get("/", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "My queue" in page
    assert "P01-S01" in page
    assert "double" not in page  # a rater never learns a session is double-coded


@pytest.mark.usefixtures("client")
def test_wrong_password_is_refused_with_a_message(auth, factory):
    factory.user("r1")
    response = auth.login("r1", "not-the-password")
    assert response.status_code == 401
    assert b"wrong password" in response.data


def test_logout_ends_the_session(client, auth, factory):
    factory.user("r1")
    auth.login("r1")
    assert auth.logout().status_code == 302
    assert client.get("/queue").status_code == 302


def test_deactivated_user_is_logged_out_at_once(client, auth, factory):
    user = factory.user("r1")
    auth.login("r1")
    assert client.get("/queue").status_code == 200
    user.active = False
    db.session.commit()
    assert client.get("/queue").status_code == 302


def test_rater_cannot_see_coordinator_pages(client, auth, factory):
    factory.user("r1")
    auth.login("r1")
    # A coordinator's home renders the overview; a rater is sent to the queue instead.
    assert client.get("/").status_code == 302


def test_logout_without_csrf_token_is_refused(csrf_app, factory):
    client = csrf_app.test_client()
    factory.user("r1")
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post(
        "/login", data={"username": "r1", "password": "correct-horse-battery", "csrf_token": token}
    )
    response = client.post("/logout")
    assert response.status_code == 400
    assert b"Traceback" not in response.data
