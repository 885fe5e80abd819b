"""Discord messages stay within Discord's embed limits."""

from __future__ import annotations

from integrations.discord import embeds


def total(embed: dict) -> int:  # type: ignore[type-arg]
    return (len(embed.get("title", "")) + len(embed.get("description", ""))
            + len(embed.get("footer", {}).get("text", ""))
            + len(embed.get("author", {}).get("name", ""))
            + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", [])))


def test_every_part_is_cut_to_its_limit() -> None:
    embed = embeds.fit({"title": "t" * 300, "description": "d" * 5000,
                        "footer": {"text": "f" * 3000}, "author": {"name": "a" * 300},
                        "fields": [{"name": "n" * 300, "value": "v" * 2000}] * 40})
    assert len(embed["title"]) == 256 and embed["title"].endswith("…")
    assert len(embed["footer"]["text"]) <= 2048 and len(embed["author"]["name"]) == 256
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
    assert len(embed.get("description", "")) <= 4096
    assert total(embed) <= 6000


def test_small_embeds_are_unchanged() -> None:
    embed = {"title": "Hi", "description": "There",
             "fields": [{"name": "A", "value": "1", "inline": True}]}
    assert embeds.fit(embed) == embed


def test_comment_message_with_a_huge_body_fits() -> None:
    msg = embeds.message(event="comment_added", project_slug="space", project_name="Space",
                         timestamp="2026-11-28T12:00:00Z", data={
                             "id": "b", "number": 3, "title": "Crash", "status": "open",
                             "priority": "low", "category": "crash",
                             "url": "https://bugnet.test/b",
                             "comment": {"id": "c", "body": "x" * 10_000,
                                         "author": {"id": "u", "display_name": "Ann"}},
                             "changes": {f"f{i}": {"from": "a" * 900, "to": "b" * 900}
                                         for i in range(30)}})
    embed = msg["embeds"][0]
    assert total(embed) <= 6000 and len(embed["fields"]) <= 25
    assert embed["author"] == {"name": "Ann"}
    assert embed["title"] == "New comment: #3 Crash"


def test_generic_events_use_their_data_as_fields() -> None:
    msg = embeds.message(event="alert_triggered", project_slug="s", project_name="",
                         timestamp="2026-11-28T12:00:00Z",
                         data={"name": "Crash spike", "condition": "crash_spike", "value": 12,
                               "details": {"window": 60}, "empty": None})
    embed = msg["embeds"][0]
    assert embed["title"] == "Alert: Crash spike"
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "Condition": "crash_spike", "Value": "12", "Details": '{"window":60}'}
    assert embed["footer"]["text"] == "Bugnet · s"
