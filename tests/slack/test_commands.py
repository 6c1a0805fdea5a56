"""/story subcommands through the real bolt app: signed form posts in, Web API calls out."""

from __future__ import annotations

from .conftest import Slack
from .helpers import command, new_story, story_of


async def test_new_posts_an_anchor_whose_thread_is_the_story(slack: Slack) -> None:
    ts = await new_story(slack, "The &lt;Lighthouse&gt;")  # Slack encodes what was typed
    (placeholder,) = slack.fake.named("chat.postMessage")
    assert placeholder.params["channel"] == "C1" and "thread_ts" not in placeholder.params
    (anchor,) = slack.fake.named("chat.update")
    assert anchor.params["ts"] == ts == placeholder.answer["ts"]
    assert "The &lt;Lighthouse&gt;" in anchor.params["text"]
    buttons = str(anchor.params["blocks"])
    assert "story_add" in buttons and "story_again" in buttons
    found = await slack.stories.latest_open("T1", "C1")
    assert found is not None and found.thread_id == ts
    answer = slack.fake.named("chat.postEphemeral")[0].params
    assert answer["user"] == "U1" and answer["channel"] == "C1"
    assert answer["text"] == "story #1 *The &lt;Lighthouse&gt;* started (comic)"


async def test_a_refused_title_posts_nothing(slack: Slack) -> None:
    assert (await command(slack, "new " + "x" * 500)).startswith("✗ The title is 500")
    assert await command(slack, "new") == "✗ The title is empty."
    assert await command(slack, "new   ") == "✗ The title is empty."
    assert slack.fake.named("chat.postMessage") == []  # no "📖 …" posted and deleted
    assert slack.fake.named("chat.delete") == []
    assert await slack.stories.latest_open("T1", "C1") is None


async def test_every_subcommand_acts_on_the_channels_latest_story(slack: Slack) -> None:
    await new_story(slack, "Old")
    ts = await new_story(slack, "New")
    script = [
        ("cast Mira a lighthouse keeper in a yellow coat", "*Mira* is in the cast"),
        ("add [Mira] climbs the stairs # Mira: Nearly there", "beat 1 added"),
        ("add the lamp flickers", "beat 2 added"),
        ("edit 2 the lamp goes dark", "beat 2 edited"),
        ("move 2 1", "beat moved to 1"),
        ("list", "page 1/1 · 2 beats"),
        ("add a gull cries", "beat 3"),
        ("remove 3", "beat 3 removed"),
        ("add a gull cries again", "beat 3"),
        ("undo", "beat 3 removed"),
        ("style manga", "style is now manga"),
        ("render", "page job #1 queued"),
        ("clip 1 2", "clip job #2 queued"),
        ("status", "*New* (#2) · 2 beats"),
        ("cancel", "job #2 cancelled"),
        ("look Mira", "character sheet for Mira queued"),
        ("export", "story file:"),
        ("frobnicate", "*storyloom* —"),
    ]
    for text, expected in script:
        answer = await command(slack, text)
        assert expected in answer, (text, answer)
    listing = await command(slack, "list")
    assert listing.index("the lamp goes dark") < listing.index("climbs the stairs")
    # beats added from the channel are the story's: posted into its thread, credited
    posts = [c.params["text"] for c in slack.fake.named("chat.postMessage")]
    in_thread = [c for c in slack.fake.named("chat.postMessage") if c.params.get("thread_ts") == ts]
    assert "beat 1 by U1: [Mira] climbs the stairs # Mira: Nearly there" in posts
    assert {c.params["text"] for c in in_thread} >= {"beat 2 by U1: the lamp flickers"}
    assert "Mira: no sheet yet (look NAME draws one)" in await command(slack, "status")
    # everything went to the newest story's thread, none to the old one
    threaded = [c for c in slack.fake.calls if "thread_ts" in c.params]
    assert threaded and {c.params["thread_ts"] for c in threaded} == {ts}
    assert len(slack.queue.submitted) == 3  # render, clip, the character sheet
    (upload,) = slack.fake.uploads  # the story file went up with files_upload_v2
    assert b'title = "New"' in upload and b'style = "manga"' in upload
    assert await command(slack, "delete") == "story *New* deleted"
    assert (await story_of(slack)).title == "Old"  # delete took the newest story only


async def test_bad_arguments_get_an_exact_answer_and_change_nothing(slack: Slack) -> None:
    await new_story(slack)
    await command(slack, "add a beat")
    moved = (await command(slack, "move 1")).replace("\u200b", "")  # the escaped backticks
    assert moved == "✗ Give the beat and its new place, e.g. `move 5 2`."
    refused = (await command(slack, "render one")).replace("\u200b", "")
    assert refused == "✗ Give the first and last beat, e.g. `render 2 5`, or none for all."
    assert (await command(slack, "edit x y")).startswith("✗ Give a beat number")
    assert (await command(slack, "style neon-noir")).startswith("✗ Unknown style 'neon-noir'")
    assert (await command(slack, "render 1 9")).startswith("✗ Pick beats within 1–1")
    assert not slack.queue.submitted
    assert (await command(slack, "list")).endswith("page 1/1 · 1 beats")


async def test_hash_id_names_an_older_story(slack: Slack) -> None:
    old = await new_story(slack, "Old")
    await new_story(slack, "New")
    assert "beat 1" in await command(slack, "#1 add a storm rolls in")
    assert "beat 2" in await command(slack, "add #1 a second storm")  # after the word, too
    async with slack.db.reading() as uow:
        old_story = await uow.stories.by_id(1)
    assert old_story is not None and old_story.thread.thread_id == old
    assert "2 beats" in await command(slack, "#1 status")
    assert "no story #999" in await command(slack, "#999 add nowhere")


async def test_a_command_without_a_story_says_how_to_start_one(slack: Slack) -> None:
    assert "/story new" in await command(slack, "add [Mira] waves")
    assert slack.fake.named("chat.postMessage") == []


async def test_an_empty_command_shows_the_help(slack: Slack) -> None:
    assert (await command(slack, "")).startswith("*storyloom* — `/story new TITLE`")
