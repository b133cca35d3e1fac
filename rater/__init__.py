"""rater: observer rating of recorded psychotherapy sessions.

``create_app`` is the application factory; nothing runs at import time.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from rater.config import PROJECT_ROOT, Config
from rater.version import __version__  # noqa: F401  (re-exported)


def create_app(config: Any = None) -> Flask:
    """Build the app from named steps; ``config`` is a Config instance, a mapping or None."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(PROJECT_ROOT / "instance"),
    )
    configure(app, config)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_security(app)
    register_template_helpers(app)
    register_commands(app)
    return app


def configure(app: Flask, config: Any) -> None:
    app.config.from_object(Config() if config is None else config)
    if isinstance(config, dict):
        app.config.update(config)


def register_extensions(app: Flask) -> None:
    from rater.db_setup import configure_engine
    from rater.extensions import csrf, db, login_manager, migrate

    configure_engine(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"

    from rater import data_version  # noqa: F401  (its table, and the listener that raises it)
    from rater.auth.sessions import load_session_user

    # A deactivated user's sessions, and sessions that were ended, end at once.
    login_manager.user_loader(load_session_user)


def register_blueprints(app: Flask) -> None:
    from rater.allocation.views import bp as allocation_bp
    from rater.audit_views import bp as audit_bp
    from rater.auth.accounts import bp as accounts_bp
    from rater.auth.views import bp as auth_bp
    from rater.coding.views import bp as coding_bp
    from rater.export.views import bp as export_bp
    from rater.main_views import bp as main_bp
    from rater.rating.views import bp as rating_bp
    from rater.reliability.views import bp as reliability_bp
    from rater.results.views import bp as results_bp

    for blueprint in (
        auth_bp,
        main_bp,
        rating_bp,
        allocation_bp,
        reliability_bp,
        export_bp,
        results_bp,
        audit_bp,
        coding_bp,
        accounts_bp,
    ):
        app.register_blueprint(blueprint)


def register_errorhandlers(app: Flask) -> None:
    from rater.errors import register

    register(app)


def register_security(app: Flask) -> None:
    from rater.security import register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from rater.templating import register

    register(app)


def register_commands(app: Flask) -> None:
    from rater.cli import register

    register(app)
