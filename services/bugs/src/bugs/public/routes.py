"""HTTP routes of the public area (spec §5)."""

from flask import Blueprint

bp = Blueprint("public", __name__, url_prefix="/api")
