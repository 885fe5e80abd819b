"""HTTP routes of the labels area (spec §5)."""

from flask import Blueprint

bp = Blueprint("labels", __name__, url_prefix="/api")
