"""Turn a logged or live prompt into the text that both training and picking featurize.

Training and the runtime call the same two functions, so a prompt read from logs
and the same prompt passed to ``Router.pick`` produce identical features.
"""

from collections.abc import Mapping, Sequence

# Roles whose turns carry what the request is about. Tool and function results
# are kept too, because a follow-up often refers to them.
_CONTEXT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

ACCEPTED_TYPES = (
    "str, a list of str (turns), or a list of OpenAI-style messages "
    '({"role": ..., "content": str | list of text parts})'
)


def prompt_text(prompt) -> str:
    """Return the text a prompt is featurized from.

    Parameters
    ----------
    prompt : str or sequence
        A string; a list of strings, one per turn (RouterBench logs); or a list of
        OpenAI-style messages ``{"role": ..., "content": ...}`` whose content is a
        string or a list of parts such as ``{"type": "text", "text": ...}``.

    Returns
    -------
    str
        The turns joined by newlines, oldest first. The latest turn ends the
        text, so :func:`clip`, which keeps more of the tail than of the head,
        keeps the latest request whole and as much earlier context as fits.

    Raises
    ------
    TypeError
        If ``prompt`` is not one of the accepted types.
    """
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (bytes, bytearray, memoryview)):
        msg = (
            f"prompt must be {ACCEPTED_TYPES}; got {type(prompt).__name__}. "
            "Decode bytes first, for example prompt.decode('utf-8')."
        )
        raise TypeError(msg)
    if not isinstance(prompt, Sequence):
        msg = f"prompt must be {ACCEPTED_TYPES}; got {type(prompt).__name__}"
        raise TypeError(msg)

    parts = []
    for position, turn in enumerate(prompt):
        if isinstance(turn, str):
            parts.append(turn)
        elif isinstance(turn, Mapping):
            text = _message_text(turn, position)
            if text:
                parts.append(text)
        else:
            msg = (
                f"prompt must be {ACCEPTED_TYPES}; turn {position} is "
                f"{type(turn).__name__}"
            )
            raise TypeError(msg)
    return "\n".join(parts)


def _message_text(message: Mapping, position: int) -> str:
    role = message.get("role", "user")
    if role not in _CONTEXT_ROLES:
        return ""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            # Image, audio and file parts carry no text to featurize.
        return "\n".join(texts)
    msg = (
        f"message {position} has content of type {type(content).__name__}; "
        "expected a string or a list of text parts"
    )
    raise TypeError(msg)


def clip(text: str, head_chars: int, tail_chars: int) -> str:
    """Return at most ``head_chars + tail_chars + 1`` characters of ``text``.

    A text longer than the two windows keeps its first ``head_chars`` and its last
    ``tail_chars`` characters, joined by a newline. Logs repeat long templates
    (system prompts, few-shot examples) at the head of many prompts while the part
    that tells prompts apart, the latest request, sits at the end, so the tail
    window is the larger one. Slicing first bounds the work of every later step,
    whatever the length of the prompt.
    """
    if len(text) <= head_chars + tail_chars:
        return text
    head = text[:head_chars] if head_chars > 0 else ""
    tail = text[-tail_chars:] if tail_chars > 0 else ""
    return f"{head}\n{tail}"
