"""Steam reviews: import from the store review API and a dashboard (spec §7, steam rows)."""
