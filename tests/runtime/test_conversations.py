"""Check that a conversation is routed on its joined turns, context included."""

import json

import numpy as np
import pytest

import router
from router._text import clip
from router.cli import main

STATES = [
    {"role": "system", "content": "You answer questions about US states."},
    {"role": "user", "content": "What is the population of California?"},
    {"role": "assistant", "content": "About 39 million people."},
    {"role": "user", "content": "and what about Texas?"},
]
FOLLOW_UP = "and what about Texas?"
JOINED = "\n".join(message["content"] for message in STATES)


@pytest.fixture(scope="module")
def small_router(small_bundle):
    return router.load(small_bundle)


def test_follow_up_differs_from_bare(small_router):
    """Check that the context changes the scores of a follow-up question."""
    result = small_router.scores(STATES)
    bare = small_router.scores(FOLLOW_UP)
    assert not np.allclose(result, bare)


def test_follow_up_equals_joined_text(small_router):
    """Check that messages score as their contents joined oldest first."""
    result = small_router.scores(STATES)
    expected = small_router.scores(JOINED)
    np.testing.assert_array_equal(result, expected)


def test_pick_of_messages_equals_joined(small_router):
    assert small_router.pick(STATES) == small_router.pick(JOINED)
    assert small_router.pick_batch([STATES, FOLLOW_UP]) == [
        small_router.pick(JOINED), small_router.pick(FOLLOW_UP)]


def test_text_parts_and_turns_equal_strings(small_router):
    """Check that content parts and plain turns give the same text as strings."""
    parts = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]}
             for m in STATES]
    turns = [m["content"] for m in STATES]
    expected = small_router.scores(JOINED)
    np.testing.assert_array_equal(small_router.scores(parts), expected)
    np.testing.assert_array_equal(small_router.scores(turns), expected)


def test_image_parts_add_no_text(small_router):
    with_image = [*STATES[:-1], {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "text", "text": FOLLOW_UP},
    ]}]
    np.testing.assert_array_equal(small_router.scores(with_image),
                                  small_router.scores(JOINED))


def test_clip_keeps_latest_turn_and_nearest_context(small_router):
    """Check which turns of a long conversation reach the features.

    The static featurizer reads the first 256 and the last 1,280 characters:
    the first turn and the latest ones count, a word deep in the middle does not.
    """
    filler = "the old bridge has many stone arches " * 200

    def conversation(first="What is 2 plus 2?", middle="zebra", near="Thanks.",
                     latest=FOLLOW_UP):
        return [
            {"role": "user", "content": first},
            {"role": "assistant", "content": f"{filler} {middle} {filler}"},
            {"role": "user", "content": near},
            {"role": "user", "content": latest},
        ]

    base = small_router.scores(conversation())
    text = router.prompt_text(conversation())
    assert len(text) > 256 + 1280
    np.testing.assert_array_equal(base, small_router.scores(clip(text, 256, 1280)))

    assert np.array_equal(small_router.scores(conversation(middle="python")), base)
    assert not np.array_equal(
        small_router.scores(conversation(latest="Write a python function.")), base)
    assert not np.array_equal(
        small_router.scores(conversation(near="Write an essay on bridges.")), base)
    assert not np.array_equal(
        small_router.scores(conversation(first="Write a python function.")), base)


def test_cli_pick_messages(small_bundle, small_router, capsys):
    """Check that `router pick --messages` routes a JSON conversation."""
    status = main(["pick", "--bundle", str(small_bundle), "--messages",
                   json.dumps(STATES)])
    assert status == 0
    assert capsys.readouterr().out.strip() == small_router.pick(JOINED)


@pytest.mark.parametrize("text, match", [
    ("not json", "not valid JSON"),
    ('{"role": "user", "content": "Hi"}', "got a JSON dict"),
])
def test_cli_pick_messages_errors(small_bundle, capsys, text, match):
    status = main(["pick", "--bundle", str(small_bundle), "--messages", text])
    assert status == 2
    assert match in capsys.readouterr().err
