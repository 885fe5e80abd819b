"""HTTP routes of the team area (spec §5)."""

from flask import Blueprint

bp = Blueprint("team", __name__, url_prefix="/api")
