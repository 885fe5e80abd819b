"""HTTP routes of the reports area (spec §5)."""

from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/api")
