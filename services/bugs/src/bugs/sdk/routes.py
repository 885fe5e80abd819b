"""HTTP routes of the sdk area (spec §5)."""

from flask import Blueprint

bp = Blueprint("sdk", __name__, url_prefix="/api")
