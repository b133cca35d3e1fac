"""Flask extensions, created unbound; ``create_app`` binds them to an app."""

from enum import StrEnum
from typing import TYPE_CHECKING

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import CheckConstraint, Column, MetaData, String, Table
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def check_in(column: str, values: type[StrEnum], *, nullable: bool = False) -> CheckConstraint:
    """``CHECK (column IN ('a', 'b', ...))`` built from an enum, named after the column.

    The values come from the enum alone (Indico's pattern), in its order, so the constraint and
    the code cannot drift apart; a change to the enum changes the constraint text, which then
    needs a migration.
    """
    allowed = f"{column} IN ({', '.join(repr(str(value)) for value in values)})"
    text = f"{column} IS NULL OR {allowed}" if nullable else allowed
    return CheckConstraint(text, name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def table_of(model: type[Base]) -> Table:
    """The model's Table (SQLAlchemy types ``__table__`` as the wider FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def length_of(column: Column[str]) -> int:
    """The most characters a String column takes, from the schema."""
    assert isinstance(column.type, String) and column.type.length is not None
    return column.type.length


# The models' base class. ``db.Model`` is made at run time from Base (adding the table name and
# the session binding); type checkers cannot see through that attribute, so they are shown Base.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()
